import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TresorError } from '@tresor/protocol';
import type { CliIo } from '../io.js';
import { childEnv, serviceChild } from './children.js';
import {
  fetchDocumentKey,
  localPolicy,
  writeClientPolicies,
  writeLocalJson,
  type LocalFacts,
} from './client-files.js';
import { sealDemoModel, sealedModelDigest, sealedModelFile } from './model-setup.js';
import { createLocalApiKey, createLocalTenant, gatewayAdmin, LOCAL_TENANT } from './provision-gateway.js';
import {
  GATEWAY_KEYSTORE_PASSPHRASE_ENV,
  LOCAL_GATEWAY_AUDIENCE,
  servingWorkDir,
  writeServiceConfigs,
} from './service-configs.js';
import { stateLayout, type StateLayout } from './layout.js';
import { ensureLocalTls, type LocalTls } from './local-ca.js';
import { LOCAL_HOST, platformPorts, requireFreePorts, type PlatformPorts } from './ports.js';
import {
  localBuildMeasurement,
  putLocalInventory,
  putReferenceValues,
  trustAdmin,
  type TrustAdmin,
} from './provision-trust.js';
import { gatewayRoutesProbe, httpsReadyProbe } from './readiness.js';
import {
  KEYSTORE_PASSPHRASE_ENV,
  createStateDirs,
  ensurePlatformRecord,
  readPlatformRecord,
  ensureSecrets,
  markDone,
  type PlatformRecord,
  type PlatformSecrets,
} from './state.js';
import { childExitOf, renderChildExit, Supervisor, type ChildExit } from './supervisor.js';
import { writeTrustConfig } from './trust-setup.js';
import { CONSOLE_DIST, consoleLink, findConsoleBuild, putConsoleReferenceValues } from './console-setup.js';

/**
 * `tresor up`: set the local platform up (first start) or reuse it, start trust, serving and
 * gateway as child processes with the sample TEE, wait until each is ready, print what a client
 * needs, and run until Ctrl-C — or until a child dies, which stops everything (never half-running).
 */

export interface UpOptions {
  readonly dir: string;
  readonly gatewayPort: number;
  readonly model: string;
  /** Per child; the issue's budget is 15 s from start to ready on a 2-core machine. */
  readonly readyTimeoutMs?: number;
  /** Resolves when the platform should stop (SIGINT/SIGTERM in the CLI). */
  readonly stop: Promise<string>;
}

const SERVICES = ['trust', 'serving', 'gateway'] as const;
/** The id of the demo model `tresor up` seals and serves. */
export const DEFAULT_MODEL_ID = 'tresor-demo';
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Facts every phase needs. */
interface Platform {
  readonly io: CliIo;
  readonly layout: StateLayout;
  readonly ports: PlatformPorts;
  readonly tls: LocalTls;
  readonly secrets: PlatformSecrets;
  record: PlatformRecord;
  readonly supervisor: Supervisor;
  readonly urls: { readonly trust: string; readonly serving: string; readonly gateway: string };
}

class Stopped extends Error {
  constructor(readonly signal: string) {
    super(`stopped on ${signal}`);
  }
}

class ChildDied extends Error {
  constructor(readonly exit: ChildExit) {
    super(`${exit.name} exited`);
  }
}

export async function runUp(io: CliIo, options: UpOptions): Promise<void> {
  const started = io.now().getTime();
  const elapsed = (): string => `${((io.now().getTime() - started) / 1000).toFixed(1)} s`;
  const progress = (line: string): void => {
    io.stderr.write(`  ${line}\n`);
  };
  let stopSignal: string | undefined;
  const stopped = options.stop.then((signal) => {
    stopSignal = signal;
    return new Stopped(signal);
  });
  const layout = stateLayout(options.dir, io.cwd);
  const ports = platformPorts(options.gatewayPort);
  await requireFreePorts(ports);

  const firstStart = (await readPlatformRecord(layout).catch(() => undefined)) === undefined;
  io.stderr.write(`${firstStart ? 'Setting up Tresor in' : 'Starting Tresor from'} ${layout.root}\n`);
  await createStateDirs(layout);
  const secrets = await ensureSecrets(layout, progress);
  const record = await ensurePlatformRecord(layout, secrets, progress, io.now());
  const tls = await ensureLocalTls(layout.root, SERVICES, io.now());
  for (const issued of tls.issued) progress(`issued the ${issued}`);

  const supervisor = new Supervisor({
    logDir: layout.logsDir,
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
  });
  /** A child that was ready and then died while later steps ran stops the start at once. */
  const childDied = supervisor.failed.then((exit) => new ChildDied(exit));
  /** Runs one step, giving up as soon as a stop is requested or a started child dies. */
  const step = async <T>(work: Promise<T>): Promise<T> => {
    const outcome = await Promise.race([work, stopped, childDied]);
    if (outcome instanceof Stopped || outcome instanceof ChildDied) {
      work.catch(() => undefined);
      throw outcome;
    }
    return outcome;
  };
  const url = (port: number): string => `https://${LOCAL_HOST}:${String(port)}`;
  const platform: Platform = {
    io,
    layout,
    ports,
    tls,
    secrets,
    record,
    supervisor,
    urls: { trust: url(ports.trust), serving: url(ports.serving), gateway: url(ports.gateway) },
  };

  const workDir = servingWorkDir(layout.root);
  await wipeWorkDir(workDir);
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  /** Stops every process, then removes whatever plaintext serving left (it may have been killed). */
  const stopAll = async (): Promise<void> => {
    await supervisor.stop();
    await wipeWorkDir(workDir);
  };
  let facts: LocalFacts;
  try {
    await step(startTrust(platform, progress));
    progress(`trust is ready (${elapsed()})`);
    const admin = trustAdmin(platform.urls.trust, tls.caCert, secrets, () => io.now());
    const measurements = await step(provisionTrust(platform, admin, options.model, progress));
    const consoleServed = await step(provisionConsole(platform, admin, progress));
    await writeServiceConfigs({
      layout,
      record: platform.record,
      secrets,
      tls,
      host: LOCAL_HOST,
      ports,
      urls: platform.urls,
      modelId: options.model,
      measurements,
      servingWorkDir: workDir,
      ...(consoleServed ? { consoleDir: CONSOLE_DIST } : {}),
    });
    // Serving and gateway start together: each needs only trust (the gateway attests serving on
    // its own schedule), and on a small machine their start-ups overlap well.
    progress(`starting serving on ${platform.urls.serving} (model ${options.model}, sample TEE)`);
    progress(`starting gateway on ${platform.urls.gateway}`);
    const servingReady = httpsReadyProbe(platform.urls.serving, tls.caCert);
    const gatewayHealthy = httpsReadyProbe(platform.urls.gateway, tls.caCert);
    const gatewayRoutes = gatewayRoutesProbe(platform.urls.gateway, tls.caCert);
    // The gateway counts as ready once it also routes to the attested serving replica.
    const gatewayReady = async (signal: AbortSignal): Promise<boolean> =>
      (await gatewayHealthy(signal)) && gatewayRoutes(signal);
    const startService = async (name: 'serving' | 'gateway', config: string, env: Record<string, string>) => {
      await supervisor.start(
        serviceChild({
          name,
          config,
          cwd: layout.root,
          env,
          ready: name === 'serving' ? servingReady : gatewayReady,
        }),
      );
      progress(`${name} is ready (${elapsed()})`);
    };
    await step(
      Promise.all([
        startService('serving', layout.servingConfig, childEnv(io.env)),
        startService(
          'gateway',
          layout.gatewayConfig,
          childEnv(io.env, { [GATEWAY_KEYSTORE_PASSPHRASE_ENV]: secrets.gatewayKeystorePassphrase }),
        ),
      ]),
    );
    facts = await step(provisionClient(platform, options.model, consoleServed, progress));
  } catch (err) {
    await stopAll();
    if (err instanceof Stopped) {
      io.stderr.write(`Stopped on ${err.signal} before the platform was ready; nothing is left running.\n`);
      return;
    }
    if (err instanceof ChildDied) {
      io.stderr.write(renderChildExit(err.exit));
      throw new TresorError(
        'CHILD_PROCESS_FAILED',
        `${err.exit.name} exited while the platform was starting; everything was stopped (full log: ${err.exit.logFile})`,
      );
    }
    const exit = childExitOf(err);
    if (exit !== undefined) io.stderr.write(renderChildExit(exit));
    throw err;
  }

  io.stdout.write(renderReady(facts, layout, io.cwd, elapsed()));

  const outcome = await Promise.race([stopped, supervisor.failed]);
  await stopAll();
  if (outcome instanceof Stopped || stopSignal !== undefined) {
    io.stderr.write(`Stopped on ${stopSignal ?? 'request'}; every Tresor process has exited.\n`);
    return;
  }
  const exit: ChildExit = outcome;
  io.stderr.write(renderChildExit(exit));
  throw new TresorError(
    'CHILD_PROCESS_FAILED',
    `${exit.name} exited unexpectedly; the platform was stopped (full log: ${exit.logFile})`,
  );
}

async function startTrust(platform: Platform, progress: (line: string) => void): Promise<void> {
  const { layout, secrets, tls, ports } = platform;
  const trustTls = tls.servers.trust;
  if (trustTls === undefined) throw new TresorError('INTERNAL_ERROR', 'no TLS certificate for trust');
  await writeTrustConfig({
    layout,
    record: platform.record,
    secrets,
    host: LOCAL_HOST,
    port: ports.trust,
    tls: trustTls,
  });
  progress(`starting trust on ${platform.urls.trust}`);
  await platform.supervisor.start(
    serviceChild({
      name: 'trust',
      config: layout.trustDeployment,
      cwd: layout.root,
      env: childEnv(platform.io.env, { [KEYSTORE_PASSPHRASE_ENV]: secrets.keystorePassphrase }),
      ready: httpsReadyProbe(platform.urls.trust, tls.caCert),
    }),
  );
}

/**
 * Once: the residency inventory, the sealed demo model and its key. Every start: the reference
 * values of the build that runs now (a rebuilt component is a new release). Returns the sample
 * measurements the services report.
 */
async function provisionTrust(
  platform: Platform,
  admin: TrustAdmin,
  modelId: string,
  progress: (line: string) => void,
): Promise<{ serving: string; gateway: string }> {
  const { layout } = platform;
  if (!platform.record.done.includes('inventory')) {
    await putLocalInventory(admin, platform.secrets);
    platform.record = await markDone(layout, platform.record, 'inventory');
    progress('residency inventory: the sample TEE machine, jurisdiction CH');
  }
  const modelStep = `model:${modelId}`;
  let modelSha256 = platform.record.done.includes(modelStep)
    ? await sealedModelDigest(sealedModelFile(layout.modelsDir, modelId))
    : undefined;
  if (modelSha256 === undefined) {
    const sealed = await sealDemoModel({ modelsDir: layout.modelsDir, modelId, admin });
    modelSha256 = sealed.sha256;
    platform.record = await markDone(layout, platform.record, modelStep);
    progress(`sealed the demo model ${modelId} (key held by trust; plaintext deleted)`);
  }
  const measurements = {
    serving: await componentMeasurement('serving'),
    gateway: await componentMeasurement('gateway'),
  };
  for (const component of ['serving', 'gateway'] as const) {
    const measurement = measurements[component];
    const modelDigests = component === 'serving' ? [modelSha256] : undefined;
    const done = `reference-values:${component}:${measurement}${modelDigests === undefined ? '' : `:${modelSha256}`}`;
    if (platform.record.done.includes(done)) continue;
    await putReferenceValues(admin, {
      component,
      measurement,
      ...(modelDigests === undefined ? {} : { modelDigests }),
    });
    platform.record = await markDone(layout, platform.record, done);
    progress(
      `reference values: ${component} of this build (sample measurement ${measurement.slice(0, 16)}…)`,
    );
  }
  return measurements;
}

/**
 * The web console, when apps/console/dist holds a build (`npm start` builds it): its page hash
 * goes into the signed reference values (once per build) and the gateway serves it at /console/.
 * A build that differs from its manifest stops the start (CONFIG_INVALID): never served, never
 * released. Returns whether the gateway serves a console.
 */
async function provisionConsole(
  platform: Platform,
  admin: TrustAdmin,
  progress: (line: string) => void,
): Promise<boolean> {
  const build = await findConsoleBuild(CONSOLE_DIST);
  if (build === undefined) {
    progress(
      'no web console build: `npm run build -w apps/console` (then start again) serves it at /console/',
    );
    return false;
  }
  const done = `reference-values:console:${build.pageHash}`;
  if (!platform.record.done.includes(done)) {
    await putConsoleReferenceValues(admin, build.pageHash);
    platform.record = await markDone(platform.layout, platform.record, done);
    progress(`reference values: the web console of this build (page hash ${build.pageHash.slice(0, 16)}…)`);
  }
  return true;
}

/** Once: tenant, policy, API key at the gateway. Every start: the client policies and local.json. */
async function provisionClient(
  platform: Platform,
  modelId: string,
  consoleServed: boolean,
  progress: (line: string) => void,
): Promise<LocalFacts> {
  const { layout, secrets, tls, io } = platform;
  const admin = gatewayAdmin(platform.urls.gateway, tls.caCert, secrets, () => io.now());
  if (!platform.record.done.includes('gateway-tenant')) {
    await createLocalTenant(admin);
    platform.record = await markDone(layout, platform.record, 'gateway-tenant');
    progress(`gateway: tenant "${LOCAL_TENANT}" with a policy allowing its models`);
  }
  let apiKey = platform.record.done.includes('gateway-api-key') ? await previousApiKey(layout) : undefined;
  if (apiKey === undefined) {
    apiKey = await createLocalApiKey(admin);
    progress('gateway: created an API key for the local tenant');
  }
  const documentKey = await fetchDocumentKey(platform.urls.trust, tls.caCert);
  await writeClientPolicies(layout, documentKey, secrets.sampleKey.verifyKey.hex);
  const facts: LocalFacts = {
    gatewayUrl: platform.urls.gateway,
    trustUrl: platform.urls.trust,
    apiKey,
    caCertFile: tls.caCertFile,
    policyFile: layout.policyFile,
    model: modelId,
    ...(consoleServed
      ? {
          consoleUrl: consoleLink(
            platform.urls.gateway,
            localPolicy(documentKey, secrets.sampleKey.verifyKey.hex),
            LOCAL_GATEWAY_AUDIENCE,
          ),
        }
      : {}),
  };
  await writeLocalJson(layout, facts);
  platform.record = await markDone(layout, platform.record, 'gateway-api-key');
  return facts;
}

async function previousApiKey(layout: StateLayout): Promise<string | undefined> {
  try {
    const facts = JSON.parse(await readFile(layout.localJson, 'utf8')) as { apiKey?: unknown };
    return typeof facts.apiKey === 'string' && facts.apiKey !== '' ? facts.apiKey : undefined;
  } catch {
    return undefined;
  }
}

/** What `tresor up` prints once everything answers: the facts and copy-paste commands. */
export function renderReady(facts: LocalFacts, layout: StateLayout, cwd: string, seconds: string): string {
  const rel = (path: string): string => {
    const r = relative(cwd, path);
    return r.startsWith('..') ? path : r;
  };
  const policy = rel(facts.policyFile);
  const ca = rel(facts.caCertFile);
  return [
    '',
    `  gateway   ${facts.gatewayUrl}`,
    `  trust     ${facts.trustUrl}`,
    `  model     ${facts.model}`,
    `  API key   ${facts.apiKey}`,
    `  policy    ${policy}   (local: accepts this machine's sample TEE, which protects nothing)`,
    `  CA        ${ca}`,
    `  all of it ${rel(layout.localJson)}`,
    '',
    ...(facts.consoleUrl === undefined
      ? ['  console   not built: npm run build -w apps/console, then start again', '']
      : [
          '  Web console (the link carries your trust policy; your browser must trust the CA above):',
          `    ${facts.consoleUrl}`,
          '',
        ]),
    '  Try it (another terminal):',
    `    export TRESOR_API_KEY=${facts.apiKey}`,
    `    npx tresor verify ${facts.gatewayUrl} --policy ${policy} --ca ${ca}`,
    `    npx tresor chat ${facts.gatewayUrl} --model ${facts.model} --policy ${policy} --ca ${ca} "Hello!"`,
    `    npx tresor proxy --upstream ${facts.gatewayUrl} --policy ${policy} --ca ${ca} --listen 127.0.0.1:8080`,
    '',
    '  Then any OpenAI client talks to the proxy, e.g.:',
    `    curl -s http://127.0.0.1:8080/v1/chat/completions -H "Authorization: Bearer $TRESOR_API_KEY" \\`,
    `      -H 'content-type: application/json' -d '{"model":"${facts.model}","messages":[{"role":"user","content":"Hello!"}]}'`,
    `    node -e 'const OpenAI = require("openai"); new OpenAI({ baseURL: "http://127.0.0.1:8080/v1", apiKey: process.env.TRESOR_API_KEY })` +
      `.chat.completions.create({ model: "${facts.model}", messages: [{ role: "user", content: "Hello!" }] }).then((r) => console.log(r.choices[0].message.content))'`,
    '',
    `  Ready in ${seconds}. Ctrl-C stops everything.`,
    `Tresor is ready: ${facts.gatewayUrl}`,
    '',
  ].join('\n');
}

/** The sample TEE measurement of a component of this checkout (its compiled dist/). */
export async function componentMeasurement(component: 'serving' | 'gateway'): Promise<string> {
  const dist = join(REPO_ROOT, 'services', component, 'dist');
  try {
    return await localBuildMeasurement(dist);
  } catch (cause) {
    throw new TresorError(
      'CONFIG_INVALID',
      `services/${component} is not built (${dist}); run npm run build first`,
      { cause },
    );
  }
}

async function wipeWorkDir(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (cause) {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot remove serving's work directory ${dir}`, { cause });
  }
}
