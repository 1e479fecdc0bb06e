// A separate process that tries to take a tenant's lock, for races between lock takers:
//
//   node --import tsx test/helpers/lock-taker.ts BASE_DIR TENANT
//
// It prints one line, `acquired` or `busy: <message>`; holding the lock, it releases it and
// exits when its stdin closes. The crash-point hooks (OPENCLAW_TEST_PAUSE_AT) stop it at a
// named step of the takeover.

import { TenantBusyError } from '../../shared/errors.js';
import { acquireTenantLock } from '../../shared/tenant/lock.js';

const [base, tenant] = process.argv.slice(2);
try {
  const lock = await acquireTenantLock(base!, tenant!, 'restore');
  process.stdout.write('acquired\n');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await lock.release();
} catch (error) {
  if (!(error instanceof TenantBusyError)) throw error;
  process.stdout.write(`busy: ${error.message}\n`);
}
