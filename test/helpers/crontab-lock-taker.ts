// A separate process that takes the crontab lock (shared/schedule/crontab-lock.ts) and
// releases it at once, for kills mid-takeover:
//
//   node --import tsx test/helpers/crontab-lock-taker.ts LOCK_PATH
//
// It prints `edited` once it held the lock. The crash-point hooks (OPENCLAW_TEST_CRASH_AT)
// kill it at a named step.

import { withCrontabLock } from '../../shared/schedule/crontab-lock.js';

await withCrontabLock(process.argv[2]!, async () => undefined);
process.stdout.write('edited\n');
