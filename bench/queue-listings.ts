// How often one batch of queued backups lists the tenant base dir (the EFS mount, where each
// listing of thousands of names is a round trip per page): a batch of `--tenants` work queue
// messages through the backup function's queue handler, with a work queue to continue on (as
// deployed: the abandoned-chain check runs), "S3" being s3rver in this process. The tenants
// and the server are set up first; the batch runs between two marker files, so an strace of
// the whole run counts the batch's openat calls alone:
//
//   TSX_DISABLE_CACHE=1 strace -f -e trace=openat -o OUT node --import tsx bench/queue-listings.ts --work DIR [--tenants 10]
//   awk '/batch-starts/{on=1} /batch-ends/{on=0} on' OUT | grep O_DIRECTORY | grep -c "\"DIR/tenants\""
//
// Prints one JSON line: the base dir, the batch's answer and its time.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';

import { workQueueHandler } from '../functions/queue-handler.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { encodeWorkMessage, type BackupWorkMessage } from '../shared/control-plane/work-queue.js';

const { values } = parseArgs({ options: { work: { type: 'string' }, tenants: { type: 'string', default: '10' } } });
if (values.work === undefined) {
  process.stderr.write('usage: queue-listings.ts --work DIR [--tenants N]\n');
  process.exit(2);
}
const work = mkdtempSync(path.join(path.resolve(values.work), 'queue-listings-'));
const base = path.join(work, 'tenants');
const count = Number(values.tenants);
const names = Array.from({ length: count }, (_, index) => `tenant-${String(index).padStart(3, '0')}`);
for (const name of names) createSampleTenant(path.join(base, name), { sessions: 2, memoryRows: 5, mediaFiles: 0 });

// s3rver ships no type declarations.
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void>; logger: { close(): void } };
const s3Dir = path.join(work, 's3');
mkdirSync(s3Dir);
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: s3Dir, silent: true, configureBuckets: [{ name: 'backups' }] });
server.logger.close = () => {};
const { port } = await server.run();
// The function's role, and "S3" at the endpoint the environment names.
Object.assign(process.env, {
  AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'x',
  AWS_REGION: 'us-east-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

const handle = workQueueHandler({
  config: { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], eventBus: 'bus', stackPrefix: 'openclaw-backup', abortMarginMs: 1000 },
  logger: new Logger({ serviceName: 'queue-listings', logLevel: 'SILENT' }),
  publish: async () => {},
  continueBackup: async () => {},
});
const run = { id: 'run-1', time: '2026-06-03T03:00:00.000Z', template: 's3://backups/{tenant}/{date}.tar.zst' };
const records = names.map((tenant) => {
  const message: BackupWorkMessage = { version: 1, kind: 'backup', tenant, to: `s3://backups/${tenant}/2026-06-03.tar.zst`, run };
  return { messageId: `m-${tenant}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' };
});
const context = {
  awsRequestId: 'req',
  functionName: 'openclaw-backup-backup',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:openclaw-backup-backup',
  memoryLimitInMB: '2048',
  getRemainingTimeInMillis: () => 900_000,
};

writeFileSync(path.join(work, 'batch-starts'), '');
const started = performance.now();
const answer = await handle({ Records: records }, context);
const ms = Math.round(performance.now() - started);
writeFileSync(path.join(work, 'batch-ends'), '');

await server.close();
rmSync(work, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ base, tenants: count, answer, ms })}\n`);
