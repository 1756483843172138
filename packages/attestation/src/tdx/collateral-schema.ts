import { z } from 'zod';

/**
 * Typed views of the two signed collateral documents, validated only after their signatures have
 * been checked: TDX TCB info v3 (Intel PCS API v4 "TDX TCB Info", `id` "TDX") and TD QE identity v2
 * (`id` "TD_QE"). Fields the verifier does not use are dropped; those it uses are validated for
 * shape and range, so a document Intel never issued cannot steer the TCB evaluation.
 */

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${2 * bytes}}$`));
/** RFC 3339 date-time in UTC as Intel writes it, e.g. 2025-06-19T10:16:03Z. */
const instant = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
const svn = (max: number) => z.number().int().min(0).max(max);
const component = z.object({ svn: svn(0xff) });
const advisoryIds = z.array(z.string()).optional();

const tcbLevel = z.object({
  tcb: z.object({
    sgxtcbcomponents: z.array(component).length(16),
    pcesvn: svn(0xffff),
    tdxtcbcomponents: z.array(component).length(16),
  }),
  tcbDate: instant,
  tcbStatus: z.string(),
  advisoryIDs: advisoryIds,
});

const isvSvnLevel = (max: number) =>
  z.object({
    tcb: z.object({ isvsvn: svn(max) }),
    tcbDate: instant,
    tcbStatus: z.string(),
    advisoryIDs: advisoryIds,
  });

const tdxModule = z.object({ mrsigner: hex(48), attributes: hex(8), attributesMask: hex(8) });

const tdxTcbInfo = z.object({
  id: z.literal('TDX'),
  version: z.literal(3),
  issueDate: instant,
  nextUpdate: instant,
  fmspc: hex(6),
  pceId: hex(2),
  // Type 0 is the only TCB type defined: SGX components map 1:1 onto the PCK's CPUSVN components.
  tcbType: z.literal(0),
  tcbEvaluationDataNumber: z.number().int().min(0),
  tdxModule: tdxModule.optional(),
  tdxModuleIdentities: z
    .array(tdxModule.extend({ id: z.string(), tcbLevels: z.array(isvSvnLevel(0xff)).min(1) }))
    .optional(),
  tcbLevels: z.array(tcbLevel).min(1),
});

const tdQeIdentity = z.object({
  id: z.literal('TD_QE'),
  version: z.literal(2),
  issueDate: instant,
  nextUpdate: instant,
  tcbEvaluationDataNumber: z.number().int().min(0),
  miscselect: hex(4),
  miscselectMask: hex(4),
  attributes: hex(16),
  attributesMask: hex(16),
  mrsigner: hex(32),
  isvprodid: svn(0xffff),
  tcbLevels: z.array(isvSvnLevel(0xffff)).min(1),
});

export type TdxTcbInfo = z.infer<typeof tdxTcbInfo>;
export type TdxTcbLevel = TdxTcbInfo['tcbLevels'][number];
export type TdxModuleIdentity = NonNullable<TdxTcbInfo['tdxModuleIdentities']>[number];
export type TdQeIdentity = z.infer<typeof tdQeIdentity>;
export type IsvSvnLevel = TdQeIdentity['tcbLevels'][number];

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

export function parseTdxTcbInfo(text: string): Parsed<TdxTcbInfo> {
  return parseWith(tdxTcbInfo, text, 'TCB info (TDX, version 3)');
}

export function parseTdQeIdentity(text: string): Parsed<TdQeIdentity> {
  return parseWith(tdQeIdentity, text, 'QE identity (TD_QE, version 2)');
}

function parseWith<T>(schema: z.ZodType<T>, text: string, what: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: `the ${what} is not JSON` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  return { ok: false, problem: `the ${what} has an invalid field ${issue?.path.join('.') ?? ''}`.trimEnd() };
}
