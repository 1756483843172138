/** Moved to @tresor/attestation (documents/); kept for trust's imports. */
export { schemaProblem } from '@tresor/attestation';
