// The control plane of remote mode: which deployed gateway the CLI talks to (the stack
// prefix), with which AWS profile and region, through which SDK clients, and how SDK
// failures become the CLI's typed errors. The SDK is imported only when a remote command
// runs, never for `--help` or local mode (start-up stays well under 300 ms).
//
// Settings: `--stack <prefix>` or OPENCLAW_STACK selects remote mode. `--aws-profile` and
// `--region` (on the command that runs), else AWS_PROFILE / AWS_REGION / the profile's
// region, choose the account and region for Lambda, EventBridge, EFS and EC2 calls.

import type { EC2Client } from '@aws-sdk/client-ec2';
import type { EFSClient } from '@aws-sdk/client-efs';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';

import { AbortedError, OpenClawError, RemoteError, UsageError } from '../shared/errors.js';
import { redact } from '../shared/storage/redact.js';

export interface ControlPlane {
  /** The stack prefix: functions are `<stack>-backup`, `<stack>-restore`, `<stack>-list`. */
  readonly stack: string;
  readonly profile?: string;
  readonly region?: string;
}

/** Invokes can run 15 minutes: wait a little longer than that for the answer. */
const INVOKE_SOCKET_TIMEOUT_MS = 16 * 60 * 1000;
const CONNECTION_TIMEOUT_MS = 10_000;
/** Describe and rule calls answer in well under a second: a silent socket is a dead one. */
const CONTROL_SOCKET_TIMEOUT_MS = 30_000;

// `socketTimeout` (idle) rather than `requestTimeout`: since @smithy/node-http-handler 4.x the
// latter only logs a warning unless `throwOnRequestTimeout` is set.
function baseConfig(plane: ControlPlane, socketTimeout = CONTROL_SOCKET_TIMEOUT_MS) {
  return {
    ...(plane.profile !== undefined && { profile: plane.profile }),
    ...(plane.region !== undefined && { region: plane.region }),
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout },
  };
}

const clients = new Map<string, Promise<unknown>>();

function cached<T>(key: string, create: () => Promise<T>): Promise<T> {
  let client = clients.get(key) as Promise<T> | undefined;
  if (client === undefined) {
    client = create();
    clients.set(key, client);
  }
  return client;
}

const keyOf = (kind: string, plane: ControlPlane) => `${kind}\u0000${plane.profile ?? ''}\u0000${plane.region ?? ''}`;

/**
 * For Invoke: a single attempt. A backup that may already be running on the gateway must
 * not be started twice by a retry after a dropped connection.
 */
export function invokeClient(plane: ControlPlane): Promise<LambdaClient> {
  return cached(keyOf('invoke', plane), async () => {
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    return new LambdaClient({ ...baseConfig(plane, INVOKE_SOCKET_TIMEOUT_MS), maxAttempts: 1 });
  });
}

/** For reading function configuration: the SDK's retries. */
export function lambdaClient(plane: ControlPlane): Promise<LambdaClient> {
  return cached(keyOf('lambda', plane), async () => new (await import('@aws-sdk/client-lambda')).LambdaClient(baseConfig(plane)));
}

export function eventBridgeClient(plane: ControlPlane): Promise<EventBridgeClient> {
  return cached(keyOf('events', plane), async () => new (await import('@aws-sdk/client-eventbridge')).EventBridgeClient(baseConfig(plane)));
}

export function efsClient(plane: ControlPlane): Promise<EFSClient> {
  return cached(keyOf('efs', plane), async () => new (await import('@aws-sdk/client-efs')).EFSClient(baseConfig(plane)));
}

/** For doctor's read-only network checks (Describe* calls only). */
export function ec2Client(plane: ControlPlane): Promise<EC2Client> {
  return cached(keyOf('ec2', plane), async () => new (await import('@aws-sdk/client-ec2')).EC2Client(baseConfig(plane)));
}

interface AwsErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** SDK errors name the AWS error; `what` says what the CLI was doing ("invoking openclaw-backup-backup"). */
export function awsErrorName(error: unknown): string {
  return (error as AwsErrorShape | undefined)?.name ?? 'Error';
}

/**
 * One line for an SDK failure, as a typed error: a missing function or rule is the user's
 * setting (usage, exit 2), everything else a failure (exit 1). Never a stack trace.
 */
export function translateAwsError(error: unknown, plane: ControlPlane, what: string): OpenClawError {
  if (error instanceof OpenClawError) return error;
  const name = awsErrorName(error);
  const message = redact(String((error as AwsErrorShape | undefined)?.message ?? error).split('\n')[0]!);
  const where = plane.region === undefined ? '' : ` in ${plane.region}`;
  if (name === 'AbortError') return new AbortedError(`interrupted while ${what}`);
  if (/region is missing/i.test(message)) {
    return new UsageError('no AWS region for the gateway: give --region, or set AWS_REGION or a region in the profile', 'NO_REGION');
  }
  switch (name) {
    case 'ResourceNotFoundException':
      return new UsageError(
        `${what}: not found${where}: is the stack "${plane.stack}" deployed there? (--stack / OPENCLAW_STACK, --region, --aws-profile)`,
        'STACK_NOT_FOUND',
      );
    case 'CredentialsProviderError':
      return new RemoteError('NO_CREDENTIALS', `no AWS credentials for calling the gateway: give --aws-profile, or set AWS_PROFILE or the AWS_* variables (${message})`,
      );
    case 'AccessDeniedException':
    case 'AccessDenied':
      return new RemoteError('ACCESS_DENIED', `${what}: access denied${where} (${message})`);
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'ExpiredTokenException':
    case 'ExpiredToken':
      return new RemoteError('INVALID_CREDENTIALS', `${what}: the AWS credentials were not accepted (${name}): log in again, e.g. aws sso login`);
    case 'TooManyRequestsException':
    case 'ThrottlingException':
      return new RemoteError('THROTTLED', `${what}: throttled by AWS${where}; try again shortly`);
    default:
      return new RemoteError('AWS_ERROR', `${what}: ${name}: ${message}`);
  }
}
