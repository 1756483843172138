/**
 * AMD EPYC product lines that run SEV-SNP. The product decides which ARK is the trust anchor, which
 * KDS endpoint issued the VCEK/VLEK, and how the 8-byte TCB_VERSION is laid out (tcb.ts).
 */
export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';

export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

export function isSnpProduct(value: string): value is SnpProduct {
  return (SNP_PRODUCTS as readonly string[]).includes(value);
}

/**
 * The product named by a report's CPUID_FAM_ID / CPUID_MOD_ID (report version 3 and later; combined
 * family and model as CPUID Fn0000_0001_EAX reports them). Family 19h models 00h-0Fh are Milan (Zen 3),
 * 10h-1Fh and A0h-AFh Genoa and its Bergamo/Siena variants (Zen 4); family 1Ah models 00h-11h are Turin
 * (Zen 5). Anything else is a product this verifier has no root or TCB layout for: null.
 */
export function productFromCpuid(family: number, model: number): SnpProduct | null {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
    return null;
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return null;
}

/**
 * The product in an AMD certificate common name: `ARK-Milan`, `SEV-Genoa` (ASK), `SEV-VLEK-Turin`
 * (ASVK), as AMD KDS names them. Report version 2 has no CPUID fields, so for it the VCEK's issuer
 * is the only place the product is written down.
 */
export function productFromCommonName(cn: string): SnpProduct | null {
  const match = /^(?:ARK|SEV|SEV-VLEK)-(\w+)$/.exec(cn);
  const name = match?.[1];
  return name !== undefined && isSnpProduct(name) ? name : null;
}
