import { join, resolve } from 'node:path';

/**
 * Where everything of the local platform lives inside its state directory (default `.tresor/`,
 * mode 0700). Secrets are in files of mode 0600; nothing here ever holds a prompt or a completion.
 *
 *   local.json                    the facts a client needs (gateway URL, API key, CA, policy, model)
 *   platform.json                 set-up state: keystore key ids, which one-time steps are done
 *   tresor-policy.json            client trust policy for this local platform (sample TEE allowed)
 *   tresor-policy.production.json a production policy example (refuses the sample TEE)
 *   secrets/                      keystore passphrases, admin key, sample TEE key
 *   tls/                          local CA and one server certificate per service
 *   trust/                        file keystore, trust + deployment config, trust state (audit, documents, resources)
 *   serving/                      serving config and the sealed model (models/<id>.tresor)
 *   gateway/                      gateway file keystore, config and state (tenants, API key hashes, usage, audit)
 *   logs/                         one log file per process
 */
export const DEFAULT_STATE_DIR = '.tresor';

export interface StateLayout {
  readonly root: string;
  readonly localJson: string;
  readonly platformJson: string;
  readonly policyFile: string;
  readonly productionPolicyFile: string;
  readonly secretsDir: string;
  readonly keystorePassphrase: string;
  readonly gatewayKeystorePassphrase: string;
  readonly adminKey: string;
  readonly tlsDir: string;
  readonly sampleTeeKey: string;
  readonly sampleTeePublicKey: string;
  readonly trustDir: string;
  readonly keystore: string;
  readonly trustConfig: string;
  readonly trustDeployment: string;
  readonly trustState: string;
  readonly servingDir: string;
  readonly servingConfig: string;
  readonly modelsDir: string;
  readonly gatewayDir: string;
  readonly gatewayConfig: string;
  readonly gatewayKeystore: string;
  readonly gatewayState: string;
  readonly logsDir: string;
}

export function stateLayout(dir: string, cwd: string): StateLayout {
  const root = resolve(cwd, dir);
  const secretsDir = join(root, 'secrets');
  const trustDir = join(root, 'trust');
  const servingDir = join(root, 'serving');
  const gatewayDir = join(root, 'gateway');
  return {
    root,
    localJson: join(root, 'local.json'),
    platformJson: join(root, 'platform.json'),
    policyFile: join(root, 'tresor-policy.json'),
    productionPolicyFile: join(root, 'tresor-policy.production.json'),
    secretsDir,
    keystorePassphrase: join(secretsDir, 'keystore-passphrase'),
    gatewayKeystorePassphrase: join(secretsDir, 'gateway-keystore-passphrase'),
    adminKey: join(secretsDir, 'trust-admin.jwk'),
    tlsDir: join(root, 'tls'),
    sampleTeeKey: join(secretsDir, 'sample-tee.jwk'),
    sampleTeePublicKey: join(secretsDir, 'sample-tee.pub'),
    trustDir,
    keystore: join(trustDir, 'keys.tresor'),
    trustConfig: join(trustDir, 'trust.json'),
    trustDeployment: join(trustDir, 'deployment.json'),
    trustState: join(trustDir, 'state'),
    servingDir,
    servingConfig: join(servingDir, 'serving.json'),
    modelsDir: join(servingDir, 'models'),
    gatewayDir,
    gatewayConfig: join(gatewayDir, 'gateway.json'),
    gatewayKeystore: join(gatewayDir, 'keys.tresor'),
    gatewayState: join(gatewayDir, 'state'),
    logsDir: join(root, 'logs'),
  };
}
