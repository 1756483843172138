import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import { attributeValue, decodeName, rfc4514String, SERIAL_NUMBER_OID } from './distinguished-name.js';

const nameOf = (text: string): ArrayBuffer => new x509.Name(text).toArrayBuffer();

describe('certificate names as Python cryptography prints them', () => {
  it('reverses the RDNs and prints serialNumber as its OID', () => {
    const [leaf, brom] = parseCertificates(
      readTestdata('attestation/nvidia/nvtrust-hopper-sample/cert_chain.pem'),
    );
    const subject = decodeName(leaf!.subjectName.toArrayBuffer());
    expect(rfc4514String(subject)).toBe(
      'CN=GH100 A01 GSP FMC LF,O=NVIDIA Corporation,C=US,2.5.4.5=53C22BA15E5D68088282DA074ED9FB37AA585771',
    );
    expect(attributeValue(decodeName(brom!.subjectName.toArrayBuffer()), SERIAL_NUMBER_OID)).toBe(
      '41431D480FE5E87274',
    );
    expect(attributeValue(subject, '2.5.4.11')).toBeUndefined();
  });

  it('escapes special characters as RFC 4514 section 2.4 and cryptography do', () => {
    const name = decodeName(nameOf('CN=\\#a\\,b\\+c\\;d\\<e\\>f\\"g\\\\h\\ , O=x, L=\\ lead'));
    expect(rfc4514String(name)).toBe('L=\\ lead,O=x,CN=\\#a\\,b\\+c\\;d\\<e\\>f\\"g\\\\h\\ ');
  });

  it('joins multi-valued RDNs with + and prints non-string values as #hex', () => {
    const name = decodeName(nameOf('CN=a+OU=b, DC=example'));
    expect(rfc4514String(name)).toBe('DC=example,CN=a+OU=b');
    expect(rfc4514String([[{ oid: '1.2.3', value: '#0101ff', isText: false }]])).toBe('1.2.3=#0101ff');
  });

  it('refuses bytes that are not a Name with INPUT_MALFORMED', () => {
    for (const bad of [
      new Uint8Array([0x30, 0x85]),
      new Uint8Array([0x04, 0x00]),
      new Uint8Array([0x30, 0x02, 0x04, 0x00]),
    ]) {
      expect(() => decodeName(bad.buffer)).toThrow(expect.objectContaining({ code: 'INPUT_MALFORMED' }));
    }
  });
});
