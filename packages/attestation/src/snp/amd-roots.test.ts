import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { isSignedBy, parseCertificates, sameCertificate } from '../certs.js';
import { amdAuthorities } from './amd-roots.js';
import { SNP_PRODUCTS } from './product.js';

describe('pinned AMD authorities', () => {
  it.each(SNP_PRODUCTS)(
    '%s: ARK self-signed, ASK and ASVK issued by it, names as AMD KDS gives them',
    async (product) => {
      const { ark, ask, asvk } = amdAuthorities(product);
      expect(ark.subjectName.getField('CN')).toEqual([`ARK-${product}`]);
      expect(ask.subjectName.getField('CN')).toEqual([`SEV-${product}`]);
      expect(asvk.subjectName.getField('CN')).toEqual([`SEV-VLEK-${product}`]);
      expect(await isSignedBy(ark, ark)).toBe(true);
      expect(await isSignedBy(ask, ark)).toBe(true);
      expect(await isSignedBy(asvk, ark)).toBe(true);
    },
  );

  it('pins three different roots, each a different key', async () => {
    const [milan, genoa, turin] = SNP_PRODUCTS.map((p) => amdAuthorities(p).ark);
    expect(await isSignedBy(milan!, genoa!)).toBe(false);
    expect(await isSignedBy(genoa!, turin!)).toBe(false);
    expect(await isSignedBy(turin!, milan!)).toBe(false);
  });

  it('equals the Milan and Genoa chains published beside the test vectors', () => {
    const pairs: [string, 'ask' | 'asvk', 'Milan' | 'Genoa'][] = [
      ['gsg-milan-v2/ask_ark.pem', 'ask', 'Milan'],
      ['virtee-milan-v2/ask_ark.pem', 'ask', 'Milan'],
      ['trustee-milan-vlek-v3/asvk_ark.pem', 'asvk', 'Milan'],
      ['azure-genoa-v3/ask_ark.pem', 'ask', 'Genoa'],
    ];
    for (const [path, role, product] of pairs) {
      const [intermediate, ark] = parseCertificates(readTestdata(`attestation/snp/${path}`));
      const pinned = amdAuthorities(product);
      expect(sameCertificate(ark!, pinned.ark)).toBe(true);
      expect(sameCertificate(intermediate!, pinned[role])).toBe(true);
    }
  });

  it('has the documented ARK fingerprints (SHA-256 of the DER)', () => {
    const fingerprint = (product: 'Milan' | 'Genoa' | 'Turin'): string =>
      bytesToHex(sha256(new Uint8Array(amdAuthorities(product).ark.rawData)));
    expect(fingerprint('Milan')).toBe('69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd');
    expect(fingerprint('Genoa')).toBe('4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1');
    expect(fingerprint('Turin')).toBe('1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a');
  });
});
