// A write that takes none of its bytes (a file system about to fill, a FUSE one that answers 0)
// ends a restore's writers in an error, as writeWhole's did already: before, the synchronous
// loops of SyncTreeWriter, the writer threads and the copy of a refused hard link retried it
// for good (a restore under `strace -e inject=pwrite64:retval=0` made 1.3 million calls in
// 20 s and never ended). Each run is under strace, which answers 0 to the writes; the
// spawn's timeout only stops (SIGKILL: strace and its tracees) a run that would otherwise spin (the test then fails).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { repoRoot, runCli, tempDir } from './helpers/tree.js';

const hasStrace = existsSync('/usr/bin/strace');
/** Far more than any of these runs takes when it ends; a spinning one is stopped here. */
const SPIN_GUARD_MS = 60_000;

describe('a write that takes none of its bytes', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it.skipIf(!hasStrace).each([
    // [writer, what strace answers 0 to]
    ['SyncTreeWriter', 'inject=pwrite64:retval=0'],
    ['WorkerTreeWriter', 'inject=pwrite64:retval=0'],
    // The copy of a link the file system refuses (its second write is the copy's: the file's own went through).
    ['SyncTreeWriter', 'inject=pwrite64:retval=0:when=2+'],
  ])('%s fails with ENOSPC instead of retrying for good (%s)', async (writer, inject) => {
    const { build } = await import('esbuild');
    const name = `${writer}-${inject.replace(/\W/g, '_')}`;
    const script = path.join(dir.path, `${name}.ts`);
    writeFileSync(
      script,
      `import { ${writer} } from '${repoRoot}/shared/restore/${writer.replace(/[A-Z]/g, (c, at: number) => (at === 0 ? '' : '-') + c.toLowerCase())}.js';
       const [root] = process.argv.slice(2);
       const writer = new ${writer}();
       const content = Buffer.from('restored content');
       try {
         writer.beginChunk(content);
         const sink = await writer.openFile(root + '/file', content.length, 0o644, new Date('2026-03-04T05:06:07Z'));
         await sink.write(content);
         await sink.finish();
         await writer.link(root + '/file', root + '/file-name');
         await writer.endChunk();
         await writer.flush();
         console.log('written');
       } catch (error) {
         console.log(error.code);
       }
       process.exit(0);`,
    );
    const bundle = path.join(dir.path, `${name}.mjs`);
    await build({ entryPoints: [script], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: bundle, logLevel: 'silent' });
    const root = path.join(dir.path, `root-${name}`);
    mkdirSync(root);
    const injections = ['-e', 'trace=pwrite64,link,linkat', '-e', inject, ...(inject.includes('when') ? ['-e', 'inject=link,linkat:error=EMLINK'] : [])];
    const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', ...injections, process.execPath, bundle, root], { encoding: 'utf8', timeout: SPIN_GUARD_MS, killSignal: 'SIGKILL' });
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('ENOSPC\n');
  });

  it.skipIf(!hasStrace)('a restore from the CLI fails in one line, leaving nothing behind', () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'notes.txt'), 'kept\n');
    const archive = path.join(dir.path, 'acme.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    const target = path.join(dir.path, 'restored');
    mkdirSync(target);
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=pwrite64', '-e', 'inject=pwrite64:retval=0', process.execPath, path.join(repoRoot, 'bin', 'openclaw.js'), '--tenants-dir', target, 'tenants', 'restore', '--from', archive],
      { encoding: 'utf8', timeout: SPIN_GUARD_MS, killSignal: 'SIGKILL' },
    );
    expect(run.signal).toBeNull();
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`openclaw: cannot write the restored tenant under ${target}: no space left on the device\n`);
    expect(readdirSync(target)).toEqual([]);
  });
});
