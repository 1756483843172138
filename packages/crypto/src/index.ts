export {
  base64ToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  concatBytes,
  equalBytes,
  hexToBytes,
  toArrayBuffer,
  utf8Decode,
  utf8Encode,
} from './bytes.js';
export {
  encodeVarint,
  readVarint,
  tryReadVarint,
  varintLength,
  writeVarint,
  type DecodedVarint,
} from './varint.js';
