// LD_PRELOAD libraries built from test/fixtures/*-preload.c: a system call answered otherwise
// than the kernel would (a write taking none of its bytes, a creation denied by a policy), for
// the tests of what the CLI then does.

import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { repoRoot } from './tree.js';

/** Whether a C compiler is here to build them (the tests that need one are skipped without). */
export const hasCompiler = spawnSync('sh', ['-c', 'command -v cc']).status === 0;

/** test/fixtures/`fixture` built as a shared library at `output`; throws with the compiler's words if it does not build. */
export function buildPreload(fixture: string, output: string): string {
  const built = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', output, path.join(repoRoot, 'test', 'fixtures', fixture), '-ldl'], { encoding: 'utf8' });
  if (built.status !== 0 || built.stderr !== '') throw new Error(`cc could not build ${fixture}: ${built.stderr}`);
  return output;
}
