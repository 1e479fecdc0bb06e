// `npm run test:node24`: runs the suite (vitest.node24.config.ts: all but the CDK app's tests)
// under Node 24, whatever Node runs npm. The Node 24 binary comes from the npm registry's
// `node` package, installed outside the project's dependencies:
//   npm install --no-save --no-audit --no-fund --prefix .tools/node24 node@24
// (what .ci/run does; .tools/ is ignored by git), or named by OPENCLAW_NODE24=/path/to/node.
// Extra arguments go to vitest (e.g. a test file).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const node = process.env.OPENCLAW_NODE24 ?? path.join('.tools', 'node24', 'node_modules', '.bin', 'node');
if (!existsSync(node)) {
  process.stderr.write(
    `test:node24: no Node 24 at ${node}: install it with\n  npm install --no-save --no-audit --no-fund --prefix .tools/node24 node@24\nor set OPENCLAW_NODE24\n`,
  );
  process.exit(1);
}
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
if (!/^v24\./.test(version)) {
  process.stderr.write(`test:node24: ${node} is Node ${version || '(does not run)'}, not 24\n`);
  process.exit(1);
}
process.stderr.write(`test:node24: ${node} (${version})\n`);

const build = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const run = spawnSync(node, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'vitest.node24.config.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(run.status ?? 1);
