// One operation per tenant at a time. The lock is a file created with O_EXCL beside the
// tenant slot, so it works on any POSIX file system, EFS included, across processes and
// hosts. Its holder refreshes its mtime while it runs; a lock whose holder is a dead
// process on this host, or whose heartbeat stopped, is taken over instead of blocking
// forever.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

import { TenantBusyError } from './errors.js';

export const LOCK_HEARTBEAT_MS = 10_000;
/** A lock not refreshed for this long belongs to a holder that is gone (another host, or a frozen process). */
export const LOCK_STALE_MS = 60_000;

export type TenantOperation = 'backup' | 'restore';

interface LockRecord {
  readonly token: string;
  readonly pid: number;
  readonly host: string;
  readonly operation: TenantOperation;
  readonly startedAt: string;
}

export interface TenantLock {
  readonly path: string;
  release(): Promise<void>;
}

export function lockPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, `.openclaw-lock-${tenant}`);
}

export interface LockOptions {
  /** Overrides for tests: how old a heartbeat may be, how often it beats. */
  readonly staleMs?: number;
  readonly heartbeatMs?: number;
}

export async function acquireTenantLock(
  tenantsDir: string,
  tenant: string,
  operation: TenantOperation,
  options: LockOptions = {},
): Promise<TenantLock> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  const record: LockRecord = {
    token: randomBytes(12).toString('hex'),
    pid: process.pid,
    host: hostname(),
    operation,
    startedAt: new Date().toISOString(),
  };
  const content = JSON.stringify(record);

  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(lockPath, content, { flag: 'wx', mode: 0o600 });
      return holdLock(lockPath, record.token, options.heartbeatMs ?? LOCK_HEARTBEAT_MS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readHolder(lockPath);
    if (holder === undefined) continue; // released between our attempt and the read
    if (!(await isStale(lockPath, holder, options.staleMs ?? LOCK_STALE_MS))) {
      throw new TenantBusyError(
        `tenant "${tenant}" is busy: a ${holder.record?.operation ?? 'another operation'} by ` +
          `pid ${holder.record?.pid ?? '?'} on ${holder.record?.host ?? '?'} holds it since ${holder.record?.startedAt ?? '?'}` +
          ` (lock file ${lockPath})`,
      );
    }
    await breakStaleLock(lockPath, holder.raw);
  }
  throw new TenantBusyError(`tenant "${tenant}" is busy: could not take its lock ${lockPath}`);
}

function holdLock(lockPath: string, token: string, heartbeatMs: number): TenantLock {
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => undefined);
  }, heartbeatMs);
  heartbeat.unref();
  let released = false;
  return {
    path: lockPath,
    async release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      const holder = await readHolder(lockPath);
      if (holder?.record?.token === token) await fs.rm(lockPath, { force: true });
    },
  };
}

async function readHolder(lockPath: string): Promise<{ raw: string; record?: LockRecord } | undefined> {
  let raw: string;
  try {
    raw = await fs.readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return { raw, record: JSON.parse(raw) as LockRecord };
  } catch {
    return { raw }; // a half-written lock: judged by its age alone
  }
}

async function isStale(lockPath: string, holder: { record?: LockRecord }, staleMs: number): Promise<boolean> {
  const record = holder.record;
  if (record && record.host === hostname()) return !isProcessAlive(record.pid);
  try {
    const stat = await fs.stat(lockPath);
    return Date.now() - stat.mtimeMs > staleMs;
  } catch {
    return true;
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves the stale lock aside under a unique name, then checks it is the lock we judged:
 * if a live process replaced it in the meantime, its lock is put back and we lose the race.
 */
async function breakStaleLock(lockPath: string, judgedContent: string): Promise<void> {
  const aside = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockPath, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const taken = await fs.readFile(aside, 'utf8').catch(() => '');
  if (taken !== judgedContent) {
    await fs.link(aside, lockPath).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}
