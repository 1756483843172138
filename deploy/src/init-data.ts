import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { TeeKind } from './runtime-classes.js';

/**
 * CoCo init data: a TOML document the Kata runtime hands the guest at launch (`aa.toml` for the
 * attestation agent, `cdh.toml` for the confidential data hub, `policy.rego` for the agent policy),
 * passed as the pod annotation io.katacontainers.config.hypervisor.cc_init_data = base64(gzip(TOML)).
 * The runtime binds the digest of the TOML document itself (not of the gzip, so the compression does
 * not matter) into the launch: SNP HOST_DATA (32 bytes), TDX MRCONFIGID (48 bytes). Hence SHA-256 for
 * SNP and SHA-384 for TDX: the digest fills the field exactly. The trust service re-hashes the
 * document a workload sends and compares (docs/trust.md "Init data"), and reads Tresor's own
 * `tresor-*` members from `[data]`.
 */
export interface InitDataInput {
  readonly component: string;
  readonly tee: TeeKind;
  /** `sha256:<hex>` of the image the pod runs. */
  readonly imageDigest: string;
  readonly release: string;
  /** The KBS (trust service) URL. */
  readonly kbsUrl: string;
  readonly kbsCertificate?: string | undefined;
  readonly tenant?: string | undefined;
  /** Rego text of the Kata agent policy. */
  readonly agentPolicy: string;
}

export type InitDataAlgorithm = 'sha256' | 'sha384';

export interface InitData {
  readonly toml: string;
  readonly algorithm: InitDataAlgorithm;
  /** Lowercase hex digest of the TOML bytes, with `algorithm`. */
  readonly digest: string;
  /** The launch-time field the TEE measures the digest into, and its expected value. */
  readonly measurement: { readonly name: 'host_data' | 'mrconfigid'; readonly value: string };
  /** The annotation value: base64 of the gzipped TOML. */
  readonly annotation: string;
}

/** The init-data version string of the CoCo initdata specification. */
export const INIT_DATA_VERSION = '0.1.0';

const FIELD: Readonly<Record<TeeKind, { algorithm: InitDataAlgorithm; name: 'host_data' | 'mrconfigid' }>> = {
  snp: { algorithm: 'sha256', name: 'host_data' },
  tdx: { algorithm: 'sha384', name: 'mrconfigid' },
};

/**
 * The default Kata agent policy: Kata's `allow-all-except-exec-process` with the other calls that let
 * the host reach into a running guest also refused: exec (`kubectl exec`), replacing the policy at
 * run time, and reseeding the guest's random number generator. A `genpolicy` policy (values
 * `coco.agentPolicy`) is stricter still: it pins every container's command, environment and image.
 */
export const DEFAULT_AGENT_POLICY = `package agent_policy

default AddARPNeighborsRequest := true
default AddSwapRequest := true
default CloseStdinRequest := true
default CopyFileRequest := true
default CreateContainerRequest := true
default CreateSandboxRequest := true
default DestroySandboxRequest := true
default GetMetricsRequest := true
default GetOOMEventRequest := true
default GuestDetailsRequest := true
default ListInterfacesRequest := true
default ListRoutesRequest := true
default MemHotplugByProbeRequest := true
default OnlineCPUMemRequest := true
default PauseContainerRequest := true
default PullImageRequest := true
default ReadStreamRequest := true
default RemoveContainerRequest := true
default RemoveStaleVirtiofsShareMountsRequest := true
default ResumeContainerRequest := true
default SetGuestDateTimeRequest := true
default SignalProcessRequest := true
default StartContainerRequest := true
default StartTracingRequest := true
default StatsContainerRequest := true
default StopTracingRequest := true
default TtyWinResizeRequest := true
default UpdateContainerRequest := true
default UpdateEphemeralMountsRequest := true
default UpdateInterfaceRequest := true
default UpdateRoutesRequest := true
default WaitProcessRequest := true
default WriteStreamRequest := true

default ExecProcessRequest := false
default ReseedRandomDevRequest := false
default SetPolicyRequest := false
`;

/** A TOML basic string (TOML 1.0 §String): quotes, backslashes and control characters escaped. */
export function tomlString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A multi-line literal string ('''…'''); the content is embedded verbatim. */
function tomlLiteralBlock(content: string): string {
  if (content.includes("'''")) throw new RangeError("init-data content may not contain '''");
  return `'''\n${content.endsWith('\n') ? content : `${content}\n`}'''`;
}

function attestationAgentConfig(input: InitDataInput): string {
  const cert = input.kbsCertificate === undefined ? '' : `cert = """\n${input.kbsCertificate.trim()}\n"""\n`;
  return `[token_configs]\n[token_configs.kbs]\nurl = ${tomlString(input.kbsUrl)}\n${cert}`;
}

function confidentialDataHubConfig(input: InitDataInput): string {
  const cert =
    input.kbsCertificate === undefined ? '' : `kbs_cert = """\n${input.kbsCertificate.trim()}\n"""\n`;
  return (
    `socket = 'unix:///run/confidential-containers/cdh.sock'\n` +
    `credentials = []\n\n` +
    `[kbc]\nname = "cc_kbc"\nurl = ${tomlString(input.kbsUrl)}\n${cert}`
  );
}

/** The init-data TOML of one pod; the same input always gives the same bytes. */
export function renderInitDataToml(input: InitDataInput): string {
  const { algorithm } = FIELD[input.tee];
  const members: [string, string][] = [
    ['tresor-component', input.component],
    ['tresor-image', input.imageDigest],
    ['tresor-release', input.release],
  ];
  if (input.tenant !== undefined) members.push(['tresor-tenant', input.tenant]);
  return [
    `version = ${tomlString(INIT_DATA_VERSION)}`,
    `algorithm = ${tomlString(algorithm)}`,
    '',
    '[data]',
    `"aa.toml" = ${tomlLiteralBlock(attestationAgentConfig(input))}`,
    '',
    `"cdh.toml" = ${tomlLiteralBlock(confidentialDataHubConfig(input))}`,
    '',
    `"policy.rego" = ${tomlLiteralBlock(input.agentPolicy)}`,
    '',
    ...members.map(([key, value]) => `${tomlString(key)} = ${tomlString(value)}`),
    '',
  ].join('\n');
}

/**
 * Encodes the annotation: gzip with a fixed header (no file name, mtime 0, OS fixed, so the same document
 * always gives the same annotation and the rendered YAML is reproducible), then base64.
 */
export function encodeInitDataAnnotation(toml: string): string {
  const gzip = gzipSync(Buffer.from(toml, 'utf8'), { level: 9 });
  // RFC 1952 §2.3: byte 9 is the OS that wrote the file, which zlib sets from its build platform.
  // Fix it to 3 (Unix) so every platform renders the same annotation; no CRC covers the header here.
  gzip[9] = 3;
  return gzip.toString('base64');
}

export function initDataDigest(toml: string, algorithm: InitDataAlgorithm): string {
  return createHash(algorithm).update(toml, 'utf8').digest('hex');
}

/** Renders one pod's init data with its digest and annotation. */
export function buildInitData(input: InitDataInput): InitData {
  const field = FIELD[input.tee];
  const toml = renderInitDataToml(input);
  const digest = initDataDigest(toml, field.algorithm);
  return {
    toml,
    algorithm: field.algorithm,
    digest,
    // The digest is exactly the field's size (32 bytes SHA-256 for SNP, 48 bytes SHA-384 for TDX).
    measurement: { name: field.name, value: digest },
    annotation: encodeInitDataAnnotation(toml),
  };
}
