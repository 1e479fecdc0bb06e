// `npm run build`, unless dist/ is newer than everything it is built from. The tests run the
// built CLI (bin/openclaw.js -> dist/bundle/), so `npm test` and `npm run test:crash` build
// first; this way a fresh checkout is built once (by `npm ci`'s prepare) and CI does not
// build again for each suite, while an edit since the last build still triggers one.

import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SOURCES = ['shared', 'cli', 'functions', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/bundle-cli.mjs'];
/** Written last by the build (scripts/bundle-cli.mjs). */
const BUILT = 'dist/bundle/main.js';

/** Newest mtime of a file, or of a directory and everything in it (a deleted file changes its directory's). */
function newest(entry) {
  const stat = statSync(entry, { throwIfNoEntry: false });
  if (stat === undefined) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const name of readdirSync(entry)) latest = Math.max(latest, newest(path.join(entry, name)));
  return latest;
}

const built = statSync(BUILT, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const changed = Math.max(...SOURCES.map(newest));
if (changed >= built) {
  const result = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
