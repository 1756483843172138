#!/usr/bin/env node
// The `tresor` command. The TypeScript sources are compiled by `npm ci` (prepare) and `npm run build`.
import('../dist/index.js').then(
  (cli) => cli.runFromProcess(),
  (err) => {
    process.stderr.write(
      `error INTERNAL_ERROR: the tresor CLI is not built (${err && err.code ? err.code : err})\nfix: run \`npm run build\` in the repository root\n`,
    );
    process.exitCode = 2;
  },
);
