// The list function's answer to { ownership: true } (what `openclaw doctor` asks) over the base
// dir given, printed as JSON: run in a child process with a small heap (wide-directory.test.ts).

import { Logger } from '@aws-lambda-powertools/logger';

import { listHandler } from '../../functions/list-handler.js';

const [tenantsDir] = process.argv.slice(2);
const handle = listHandler({
  config: { tenantsDir: tenantsDir!, backupBucket: 'backups', allowedSourceBuckets: [], abortMarginMs: 1000 },
  logger: new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' }),
});
const context = { awsRequestId: 'r', functionName: 'openclaw-backup-list', functionVersion: '$LATEST', invokedFunctionArn: 'arn', memoryLimitInMB: '256', getRemainingTimeInMillis: () => 600_000 };
process.stdout.write(JSON.stringify(await handle({ ownership: true }, context)));
