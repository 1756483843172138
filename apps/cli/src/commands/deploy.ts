import type { CommandModule } from '../program.js';

/** `tresor deploy render`: Kubernetes / Confidential Containers manifests (docs/deploy.md). */
export const deployCommands: CommandModule = (program, io) => {
  const deploy = program
    .command('deploy')
    .description('production deployment on Kubernetes with Confidential Containers')
    .addHelpText('after', '\nSee docs/deploy.md for the values, the cluster prerequisites and OpenShift.');
  deploy
    .command('render')
    .description(
      'render the manifests (one YAML file per chart) and reference-values.json, validated against the Kubernetes schemas and the deployment policy',
    )
    .requiredOption('--out <dir>', 'output directory (created; must be empty unless --force)')
    .option('--values <file>', 'values file, YAML or JSON (default: the built-in defaults)')
    .option(
      '--images <file>',
      'images file written by `npm run images` (dist-images/images.json): pins trust, gateway and serving to the digests built there, over the values file',
    )
    .option('--force', 'replace the contents of a non-empty output directory')
    .option(
      '--strict',
      'refuse placeholder image digests and reference values without a launch measurement (release pipelines)',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 written; 1 the manifests break the deployment policy (nothing written);\n2 unreadable or invalid values, a non-empty --out without --force, or an unwritable output.',
    )
    .action(async (options: Record<string, unknown>) => {
      // The renderer (cdk8s, the Kubernetes schemas: about 14 MiB) is loaded by this command only,
      // not by every `tresor` process — above all not by the long-running services.
      const { renderDeployCommand } = await import('./deploy-render.js');
      await renderDeployCommand(options, io);
    });
};
