// What every subcommand needs: where the tenants are, how to run operations (in this
// process, or on a deployed gateway), how to report, and the Ctrl-C signal.

import type { Command } from 'commander';

import { UsageError } from '../shared/errors.js';
import type { StorageFlags, TenantOperations } from '../shared/operations.js';
import type { ControlPlane } from '../shared/control-plane/deployment.js';
import type { Output } from './output.js';

export interface CliContext {
  readonly output: Output;
  readonly signal: AbortSignal;
  /** The tenant base dir (local mode), or `<stack>:/mnt/tenants` (remote mode). */
  readonly tenantsDir: string;
  /** The gateway the CLI talks to (`--stack` / OPENCLAW_STACK), or undefined in local mode. */
  readonly remote: ControlPlane | undefined;
  /** Built on first use, so `--help` and usage errors load nothing heavy. */
  operations(): TenantOperations;
}

/** The remote control plane, or a usage error explaining that `what` needs one. */
export function requireRemote(context: CliContext, what: string, hint = ''): ControlPlane {
  const remote = context.remote;
  if (remote === undefined) {
    throw new UsageError(`${what} works on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK${hint}`, 'REMOTE_ONLY');
  }
  return remote;
}

export function addStorageOptions(command: Command, direction: 'backup' | 'restore'): void {
  command
    .option('--aws-profile <name>', 'AWS profile from the shared config/credentials files (SSO included); in remote mode, the profile the gateway is called with')
    .option('--region <region>', 'AWS region of the bucket; in remote mode, the region of the gateway')
    .option('--endpoint <url>', 'S3-compatible endpoint (MinIO, R2, Ceph…); path-style addressing')
    .option('--access-key <id>', 'access key for --endpoint (or set OPENCLAW_S3_ACCESS_KEY)')
    .option('--secret-key <secret>', 'secret key for --endpoint (or set OPENCLAW_S3_SECRET_KEY)')
    .option(
      '--pipe <command>',
      direction === 'backup'
        ? 'send the archive through this shell command before storing it (e.g. "age -r age1..."); not in remote mode'
        : 'read the stored bytes through this shell command first (e.g. "age -d -i key.txt"); not in remote mode',
    );
}

/** `--aws-profile` / `--region` for commands that only call the gateway (remote mode). */
export function addControlPlaneOptions(command: Command): Command {
  return command
    .option('--aws-profile <name>', 'remote mode: the AWS profile the gateway is called with (default: AWS_PROFILE)')
    .option('--region <region>', 'remote mode: the region of the gateway (default: AWS_REGION or the profile\'s)');
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
