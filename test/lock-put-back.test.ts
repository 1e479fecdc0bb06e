// A live holder's lock moved aside (by a taker without a claim: no inode left) is put back
// under the lock's name only while no other lock holds it. Where no hard link can be made (a
// file system without them, or no inode left for one on tmpfs), it was put back by a look at the
// name, then a rename, which replaces whatever holds the name: a lock created between the two
// was overwritten, and its holder ran on beside the one put back. Each run holds the rename
// (strace delays it 1.5 s) and creates a lock meanwhile, as the next command would.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { repoRoot, tempDir } from './helpers/tree.js';

const hasStrace = existsSync('/usr/bin/strace');

describe('putting back a lock moved aside', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it.skipIf(!hasStrace).each(['EPERM', 'ENOSPC'])('never replaces a lock created while it is put back (a link fails with %s)', async (linkError) => {
    const { build } = await import('esbuild');
    const script = path.join(dir.path, `put-back-${linkError}.ts`);
    writeFileSync(
      script,
      `import { putLockBack } from '${repoRoot}/shared/tenant/lock-takeover.js';
       const [aside, lockPath] = process.argv.slice(2);
       console.log(String(await putLockBack(aside, lockPath)));`,
    );
    const bundle = path.join(dir.path, `put-back-${linkError}.mjs`);
    await build({ entryPoints: [script], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: bundle, logLevel: 'silent' });
    const base = path.join(dir.path, `base-${linkError}`);
    mkdirSync(base);
    const aside = path.join(base, 'lock.aside');
    const lockPath = path.join(base, 'lock');
    writeFileSync(aside, 'the holder put back');
    const log = path.join(dir.path, `strace-${linkError}.log`);

    const child = spawn('strace', ['-f', '-qq', '-o', log, '-e', 'trace=link,linkat,rename,renameat,renameat2', '-e', `inject=link,linkat:error=${linkError}`, '-e', 'inject=rename,renameat,renameat2:delay_enter=1500000', process.execPath, bundle, aside, lockPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    child.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const ended = new Promise<number | null>((resolve) => child.on('close', resolve));

    // The link has failed: what follows is the way back without one, its rename held.
    while (!(existsSync(log) && /link(at)?\(.*lock\.aside/.test(readFileSync(log, 'utf8')))) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const created = (() => {
      try {
        writeFileSync(lockPath, 'the next command', { flag: 'wx' });
        return 'created';
      } catch (error) {
        return (error as NodeJS.ErrnoException).code;
      }
    })();
    expect(await ended).toBe(0);

    // The name was reserved before the rename: the next command found it taken, as it would the lock itself.
    expect(created).toBe('EEXIST');
    expect(said.trim()).toBe('true');
    expect(readFileSync(lockPath, 'utf8')).toBe('the holder put back');
    expect(readdirSync(base)).toEqual(['lock']);
  }, 30_000);
});
