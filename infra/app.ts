// Entry point of `cdk synth` / `cdk deploy` (cdk.json: `node --import tsx infra/app.ts`).

import { App } from 'aws-cdk-lib';
import { createBackupApp } from './backup-app.js';

createBackupApp(new App());
