// vitest globalSetup: every temporary directory of a test run lives in one directory of its
// own, removed when the run ends. A test file whose tests `vitest -t` filtered out never runs
// its afterAll (its module-level temp dir would stay), nor does a worker that was killed.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const previous = process.env.TMPDIR;
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'openclaw-test-run-'));
  // Like /tmp: tests run the CLI as an unprivileged user too, and that user makes temp dirs.
  chmodSync(runDir, 0o1777);
  process.env.TMPDIR = runDir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    // rm rather than rmSync: some trees are deeper than PATH_MAX; never into a mount a test left.
    spawnSync('rm', ['-rf', '--one-file-system', runDir], { stdio: 'inherit' });
    // Vitest's own copies of the transformed modules (os.tmpdir()/<random>/ssr), which it
    // leaves behind at the end of a run.
    spawnSync('rm', ['-rf', '--one-file-system', project.tmpDir], { stdio: 'inherit' });
  };
}
