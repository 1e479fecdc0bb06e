// What every subcommand needs: where the tenants are, how to run operations (in this
// process, or on a deployed gateway), how to report, and the Ctrl-C signal.

import type { Command } from 'commander';

import type { StorageFlags, TenantOperations } from '../shared/operations.js';
import type { Output } from './output.js';

export interface CliContext {
  readonly output: Output;
  readonly signal: AbortSignal;
  /** The tenant base dir (local mode). */
  readonly tenantsDir: string;
  /** Built on first use, so `--help` and usage errors load nothing heavy. */
  operations(): TenantOperations;
}

export function addStorageOptions(command: Command, direction: 'backup' | 'restore'): void {
  command
    .option('--aws-profile <name>', 'AWS profile from the shared config/credentials files (SSO included)')
    .option('--region <region>', 'AWS region of the bucket')
    .option('--endpoint <url>', 'S3-compatible endpoint (MinIO, R2, Ceph…); path-style addressing')
    .option('--access-key <id>', 'access key for --endpoint (or set OPENCLAW_S3_ACCESS_KEY)')
    .option('--secret-key <secret>', 'secret key for --endpoint (or set OPENCLAW_S3_SECRET_KEY)')
    .option(
      '--pipe <command>',
      direction === 'backup'
        ? 'send the archive through this shell command before storing it (e.g. "age -r age1...")'
        : 'read the stored bytes through this shell command first (e.g. "age -d -i key.txt")',
    );
}

export function storageFlags(flags: Record<string, unknown>): StorageFlags {
  const text = (key: string) => (typeof flags[key] === 'string' ? (flags[key] as string) : undefined);
  const endpoint = text('endpoint');
  // Keys from the environment keep them out of `ps`; they only apply to a custom endpoint.
  const fromEnv = (name: string) => (endpoint === undefined ? undefined : process.env[name]);
  return {
    awsProfile: text('awsProfile'),
    region: text('region'),
    endpoint,
    accessKey: text('accessKey') ?? fromEnv('OPENCLAW_S3_ACCESS_KEY'),
    secretKey: text('secretKey') ?? fromEnv('OPENCLAW_S3_SECRET_KEY'),
    pipe: text('pipe'),
  };
}
