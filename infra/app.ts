// Entry point of `cdk synth` / `cdk deploy` (cdk.json: `node --import tsx infra/app.ts`).
// A bad configuration is reported as its list of problems, not as a stack trace.

import { App } from 'aws-cdk-lib';
import { createBackupApp } from './backup-app.js';
import { InfraConfigError } from './validation.js';

try {
  createBackupApp(new App());
} catch (error) {
  if (!(error instanceof InfraConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
}
