import { TresorError } from '@tresor/protocol';
import type { ServingConfig } from '../config.js';
import { configfsTsmAvailable, openConfigfsTsmSource } from './configfs-tsm.js';
import type { EvidenceSource } from './evidence-source.js';
import { loadSampleEvidenceSource } from './sample-source.js';

/**
 * The evidence source a configuration names. `auto` prefers configfs-tsm; it falls back to the
 * sample TEE only in local mode with a key file configured (production configs cannot name one),
 * and otherwise fails with EVIDENCE_UNAVAILABLE.
 */
export async function openEvidenceSource(config: ServingConfig): Promise<EvidenceSource> {
  const tee = config.tee;
  switch (tee.source) {
    case 'sample':
      return loadSampleEvidenceSource({
        signingKeyFile: tee.signingKeyFile,
        measurement: tee.measurement,
        svn: tee.svn,
      });
    case 'configfs-tsm':
      return openConfigfsTsmSource({ root: tee.root });
    case 'auto':
      if (await configfsTsmAvailable({ root: tee.root })) return openConfigfsTsmSource({ root: tee.root });
      if (config.mode === 'local' && tee.signingKeyFile !== undefined) {
        return loadSampleEvidenceSource({
          signingKeyFile: tee.signingKeyFile,
          measurement: tee.measurement,
          svn: tee.svn,
        });
      }
      throw new TresorError(
        'EVIDENCE_UNAVAILABLE',
        `no configfs-tsm report interface at ${tee.root}/report${config.mode === 'local' ? ' and no sample TEE key configured' : ''}`,
      );
  }
}
