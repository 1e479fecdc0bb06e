// Named steps of backup, restore and recovery where a crash leaves a distinct state on disk,
// and a test hook that kills the process at one of them. The fault-injection suite
// (test/crash/) sets OPENCLAW_TEST_CRASH_AT=<point> and checks that the next command
// settles whatever the killed one left; OPENCLAW_TEST_PAUSE_AT=<point> stops the process
// there instead (SIGSTOP), so a test can act while it holds its lock, then continue or kill
// it (several points, comma-separated, stop it at each). `<point>@<n>` picks the n-th time
// the point is reached. Unset (always, outside tests),
// a crash point is one comparison.

export const CRASH_POINTS = [
  // The tenant lock (tenant/lock.ts).
  'lock:temp-written',
  'lock:linked',
  'lock:acquired',
  'lock:stale-judged',
  'lock:stale-checked',
  'lock:stale-moved-aside',
  // The crontab lock of `openclaw cron add|rm` (schedule/crontab-lock.ts).
  'crontab:temp-written',
  'crontab:stale-moved-aside',
  // Backup (backup.ts, temp-area.ts) and its local archive (storage/local.ts).
  'backup:scratch-created',
  // A same-host database's snapshot taken, its checks ahead; its quick_check beginning (live-files.ts).
  'backup:snapshot-taken',
  'backup:quick-check',
  // A snapshot or copy of a live file written in the scratch area, about to be archived (live-files.ts).
  'backup:temp-copy-written',
  'archive:temp-opened',
  'archive:temp-written',
  'archive:linked',
  'archive:renamed',
  'backup:stored',
  // A backup in pieces (backup.ts, continuation.ts): a piece saved its state.
  'backup:piece-saved',
  // A chain's last piece stored the archive whole (its state records it committing), its state not yet removed.
  'backup:chain-committed',
  // A piece's state written whole beside its name, the lock's check and the rename ahead.
  'continuation:temp-written',
  // `tenants verify` writing its mark beside a local archive (storage/local.ts).
  'verify:mark-temp-written',
  // Restore (restore.ts) and its staging area (tenant/slot.ts).
  'journal:extracting:temp-written',
  'restore:journal-written',
  'restore:staging-created',
  'restore:extracting',
  'restore:verified',
  'restore:staging-discarded',
  // A restore in pieces (restore.ts, restore/restore-continuation.ts): a piece marked its checkpoint as written past, or saved it and stopped.
  'restore:piece-marked',
  // A piece's checkpoint written whole beside its name, the lock's check and the rename ahead.
  'restore-checkpoint:temp-written',
  // A piece issued a write past its checkpoint (resuming-tree-writer.ts); `@n`: its n-th.
  'restore:piece-wrote',
  'restore:piece-saved',
  // A piece queued its next (RestorePieces.handOver), its checkpoint not yet saved as handed over.
  'restore:piece-handed-over',
  // A last piece committed and told so (RestorePieces.onCommitted), its checkpoint not yet removed.
  'restore:piece-told-committed',
  // The commit, also the steps recovery takes to finish one (tenant/slot.ts).
  'journal:committing:temp-written',
  'commit:journal-written',
  // A live restore's commit: the slot's tree judged to go aside (its lock checked), the rename next.
  'commit:old-judged',
  'commit:old-moved-aside',
  'commit:new-moved-in',
  'commit:old-moved-to-trash',
  'commit:journal-removed',
  'restore:committed',
  // `tenants recover --keep` (tenant/slot.ts).
  'journal:keeping:temp-written',
  'keep:journal-written',
  'keep:slot-moved-to-trash',
  'keep:moved-in',
  'keep:other-moved-to-trash',
  // The sweep (tenant/slot.ts): a tree under a trash name judged the tool's, about to be removed.
  'sweep:trash-judged',
  // Recovery under the lock (tenant/slot.ts): a leftover listed before the lock found still there, not judged yet.
  'sweep:leftover-found',
  // A tree's removal (tenant/remove-tree.ts): the files at its top removed, its directories not yet.
  'remove:top-files-removed',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const crashAt = parseTarget(process.env.OPENCLAW_TEST_CRASH_AT);
const pauseAt = (process.env.OPENCLAW_TEST_PAUSE_AT ?? '').split(',').flatMap((target) => parseTarget(target) ?? []);
const reached = new Map<string, number>();

export function crashPoint(point: CrashPoint): void {
  if (crashAt === undefined && pauseAt.length === 0) return;
  const count = (reached.get(point) ?? 0) + 1;
  reached.set(point, count);
  if (crashAt?.point === point && crashAt.nth === count) process.kill(process.pid, 'SIGKILL');
  if (pauseAt.some((target) => target.point === point && target.nth === count)) process.kill(process.pid, 'SIGSTOP');
}

function parseTarget(value: string | undefined): { point: string; nth: number } | undefined {
  if (value === undefined || value === '') return undefined;
  const [point, nth] = value.split('@');
  return { point: point!, nth: nth === undefined ? 1 : Number(nth) };
}
