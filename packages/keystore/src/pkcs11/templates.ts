import pkcs11js from 'pkcs11js';
import { utf8Encode } from '@tresor/crypto';
import type { KeyId } from '../key-id.js';

/**
 * Object templates (PKCS#11 v2.40 §4). Every long-lived key is a token object, private (needs the
 * PIN), sensitive and non-extractable: its value can never be read or wrapped out of the token.
 * WRAP/UNWRAP/SIGN are modifiable (footnote 8 of Tables 24–27), which is how a key is disabled.
 */
export type Template = pkcs11js.Template;

const attr = (type: number, value: boolean | number | Buffer | string): pkcs11js.Attribute => ({
  type,
  value,
});

export function idAttribute(id: KeyId): pkcs11js.Attribute {
  return attr(pkcs11js.CKA_ID, Buffer.from(utf8Encode(id)));
}

/** An AES-256 KEK: wraps and unwraps keys, encrypts nothing else. */
export function kekTemplate(id: KeyId, label: string): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_SECRET_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_AES),
    idAttribute(id),
    attr(pkcs11js.CKA_LABEL, label),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_SENSITIVE, true),
    attr(pkcs11js.CKA_EXTRACTABLE, false),
    attr(pkcs11js.CKA_MODIFIABLE, true),
    attr(pkcs11js.CKA_WRAP, true),
    attr(pkcs11js.CKA_UNWRAP, true),
    attr(pkcs11js.CKA_ENCRYPT, false),
    attr(pkcs11js.CKA_DECRYPT, false),
    attr(pkcs11js.CKA_SIGN, false),
    attr(pkcs11js.CKA_VERIFY, false),
    attr(pkcs11js.CKA_DERIVE, false),
  ];
}

export function kekGenerationTemplate(id: KeyId, label: string): Template {
  return [...kekTemplate(id, label), attr(pkcs11js.CKA_VALUE_LEN, 32)];
}

/**
 * A data key on its way in or out: a session object (gone when the session closes) that is not
 * sensitive, because the data key is meant to be used outside the token — it is the KEK that stays.
 */
export function dataKeyTemplate(value?: Buffer): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_SECRET_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_AES),
    attr(pkcs11js.CKA_TOKEN, false),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_SENSITIVE, false),
    attr(pkcs11js.CKA_EXTRACTABLE, true),
    attr(pkcs11js.CKA_ENCRYPT, false),
    attr(pkcs11js.CKA_DECRYPT, false),
    ...(value === undefined ? [] : [attr(pkcs11js.CKA_VALUE, value)]),
  ];
}

/** The ephemeral AES key of a BYOK import: a sensitive session object that can only unwrap. */
export function importEphemeralTemplate(): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_SECRET_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_AES),
    attr(pkcs11js.CKA_TOKEN, false),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_SENSITIVE, true),
    attr(pkcs11js.CKA_EXTRACTABLE, false),
    attr(pkcs11js.CKA_UNWRAP, true),
    attr(pkcs11js.CKA_WRAP, false),
    attr(pkcs11js.CKA_ENCRYPT, false),
    attr(pkcs11js.CKA_DECRYPT, false),
  ];
}

export function ecPublicTemplate(id: KeyId, label: string, oidDer: Uint8Array): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_PUBLIC_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_EC),
    idAttribute(id),
    attr(pkcs11js.CKA_LABEL, label),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, false),
    attr(pkcs11js.CKA_VERIFY, true),
    attr(pkcs11js.CKA_EC_PARAMS, Buffer.from(oidDer)),
  ];
}

export function ecPrivateTemplate(id: KeyId, label: string): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_PRIVATE_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_EC),
    idAttribute(id),
    attr(pkcs11js.CKA_LABEL, label),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_SENSITIVE, true),
    attr(pkcs11js.CKA_EXTRACTABLE, false),
    attr(pkcs11js.CKA_MODIFIABLE, true),
    attr(pkcs11js.CKA_SIGN, true),
    attr(pkcs11js.CKA_DECRYPT, false),
    attr(pkcs11js.CKA_UNWRAP, false),
    attr(pkcs11js.CKA_DERIVE, false),
  ];
}

/** CKA_ID of the BYOK import key pair; not a KeyId, so it never shows up in `list`. */
export const IMPORT_KEY_ID = Buffer.from('tresor.byok-import');

export function rsaImportPublicTemplate(bits: number): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_PUBLIC_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_RSA),
    attr(pkcs11js.CKA_ID, IMPORT_KEY_ID),
    attr(pkcs11js.CKA_LABEL, 'Tresor BYOK import key'),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, false),
    attr(pkcs11js.CKA_MODULUS_BITS, bits),
    attr(pkcs11js.CKA_PUBLIC_EXPONENT, Buffer.from([0x01, 0x00, 0x01])),
    attr(pkcs11js.CKA_ENCRYPT, true),
    attr(pkcs11js.CKA_WRAP, false),
    attr(pkcs11js.CKA_VERIFY, false),
  ];
}

export function rsaImportPrivateTemplate(): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_PRIVATE_KEY),
    attr(pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_RSA),
    attr(pkcs11js.CKA_ID, IMPORT_KEY_ID),
    attr(pkcs11js.CKA_LABEL, 'Tresor BYOK import key'),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_SENSITIVE, true),
    attr(pkcs11js.CKA_EXTRACTABLE, false),
    attr(pkcs11js.CKA_UNWRAP, true),
    attr(pkcs11js.CKA_DECRYPT, false),
    attr(pkcs11js.CKA_SIGN, false),
  ];
}

/**
 * Data objects (CKO_DATA) that hold what a key object cannot: a key record with the creation time
 * (CKA_START_DATE is a date only, and pkcs11js 2.1.7 cannot read it back from SoftHSM), and the
 * tombstone a destroyed key leaves. CKA_LABEL is the key id, CKA_VALUE the metadata as JSON.
 */
export const KEY_RECORD_APPLICATION = 'tresor-keystore/key';
export const TOMBSTONE_APPLICATION = 'tresor-keystore/destroyed-key';

export function recordTemplate(
  application: typeof KEY_RECORD_APPLICATION | typeof TOMBSTONE_APPLICATION,
  id: KeyId,
  json: string,
): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_DATA),
    attr(pkcs11js.CKA_TOKEN, true),
    attr(pkcs11js.CKA_PRIVATE, true),
    attr(pkcs11js.CKA_APPLICATION, application),
    attr(pkcs11js.CKA_LABEL, id),
    attr(pkcs11js.CKA_VALUE, Buffer.from(utf8Encode(json))),
  ];
}

export function recordQuery(application: string, id?: KeyId): Template {
  return [
    attr(pkcs11js.CKA_CLASS, pkcs11js.CKO_DATA),
    attr(pkcs11js.CKA_APPLICATION, application),
    ...(id === undefined ? [] : [attr(pkcs11js.CKA_LABEL, id)]),
  ];
}
