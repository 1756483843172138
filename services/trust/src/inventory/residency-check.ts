/** Moved to @tresor/attestation (documents/) so browsers check the same way; kept for trust's imports. */
export {
  DEFAULT_JURISDICTION,
  requireResident,
  residencyIds,
  residentHardwareIds,
  sampleMachineId,
  type ResidencyFinding,
} from '@tresor/attestation';
