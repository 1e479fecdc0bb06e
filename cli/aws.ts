// The SDK clients of remote mode, for the deployed gateway the CLI talks to (the stack
// prefix) with the AWS profile and region given; control-plane/aws-errors.ts turns their
// failures into typed errors. The SDK is imported only when a remote command runs, never
// for `--help` or local mode (start-up stays well under 300 ms).
//
// Settings: `--stack <prefix>` or OPENCLAW_STACK selects remote mode. `--aws-profile` and
// `--region` (on the command that runs), else AWS_PROFILE / AWS_REGION / the profile's
// region, choose the account and region for Lambda, EventBridge, Scheduler, SQS, DynamoDB,
// EFS and EC2 calls.

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { EFSClient } from '@aws-sdk/client-efs';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SharedConfigFiles } from '@smithy/types';

import { noteRegionInUse } from '../shared/control-plane/aws-errors.js';
import { assertRegionVariable } from '../shared/storage/s3-url.js';
import type { ControlPlane } from '../shared/control-plane/deployment.js';
import type { ConfiguredEndpoint } from '../shared/storage/configured-endpoint.js';

/** Invokes can run 15 minutes: wait a little longer than that for the answer. */
const INVOKE_SOCKET_TIMEOUT_MS = 16 * 60 * 1000;
const CONNECTION_TIMEOUT_MS = 10_000;
/** Describe and rule calls answer in well under a second: a silent socket is a dead one. */
const CONTROL_SOCKET_TIMEOUT_MS = 30_000;

// `socketTimeout` (idle) rather than `requestTimeout`: since @smithy/node-http-handler 4.x the
// latter only logs a warning unless `throwOnRequestTimeout` is set.
//
// An endpoint the environment or the profile configures for the service (AWS_ENDPOINT_URL,
// a profile's endpoint_url: LocalStack, a VPC endpoint) is passed explicitly: the SDK reads
// it for AWS_PROFILE only, so `--aws-profile` must mean the same (configured-endpoint.ts).
async function baseConfig(plane: ControlPlane, serviceId: string, socketTimeout = CONTROL_SOCKET_TIMEOUT_MS) {
  const { assertProfileExists, configuredCaBundle, environmentKeysOverProfile, profileRegion } = await import('../shared/storage/configured-endpoint.js');
  const files = await sharedFiles(plane);
  await assertProfileExists(plane.profile, process.env, files);
  const endpoint = await controlPlaneEndpoint(plane, serviceId);
  const credentials = plane.profile !== undefined ? await profileOverEnvironmentKeys(plane.profile) : environmentKeysOverProfile();
  const caBundle = await configuredCaBundle({ ...(plane.profile !== undefined && { profile: plane.profile }), files });
  // As the SDK finds it: --region, else AWS_REGION, else the profile's region.
  if (plane.region === undefined) assertRegionVariable();
  noteRegionInUse(plane, plane.region ?? (nonEmptyText(process.env.AWS_REGION) ?? (await profileRegion({ ...(plane.profile !== undefined && { profile: plane.profile }), files }))));
  return {
    ...(plane.profile !== undefined && { profile: plane.profile }),
    ...(credentials !== undefined && { credentials }),
    ...(plane.region !== undefined && { region: plane.region }),
    ...(endpoint !== undefined && { endpoint: endpoint.url }),
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout, ...(caBundle !== undefined && { httpsAgent: { ca: caBundle.pem } }) },
  };
}

/**
 * With keys in the environment, `--aws-profile`'s credentials read from the shared files, as in
 * the AWS CLI and local mode (s3-client.ts): the SDK's default chain took the profile as well,
 * but printed a multi-line warning naming AWS_PROFILE. Undefined without keys: the default
 * chain, which falls back to the instance's or container's role for a profile without keys.
 */
async function profileOverEnvironmentKeys(profile: string) {
  // Set at all, as the SDK tests before it warns.
  if (!process.env.AWS_ACCESS_KEY_ID || !process.env.AWS_SECRET_ACCESS_KEY) return undefined;
  const { fromIni } = await import('@aws-sdk/credential-providers');
  return fromIni({ profile });
}

/** The endpoint configured for one of the control plane's services, if any (`doctor` shows them). */
export async function controlPlaneEndpoint(plane: ControlPlane, serviceId: string): Promise<ConfiguredEndpoint | undefined> {
  const { configuredEndpoint } = await import('../shared/storage/configured-endpoint.js');
  return configuredEndpoint(serviceId, { profile: plane.profile, files: await sharedFiles(plane) });
}

// The shared config and credentials files, read once per command for every client it makes
// and every endpoint it shows (doctor makes eight clients; each read them three times). A
// command resolves its control plane once (requireRemote) and hands that object to all of
// them, so the object stands for the command: the next command, in-process too, reads them
// afresh.
const filesByPlane = new WeakMap<ControlPlane, Promise<SharedConfigFiles>>();

function sharedFiles(plane: ControlPlane): Promise<SharedConfigFiles> {
  let files = filesByPlane.get(plane);
  if (files === undefined) {
    files = import('../shared/storage/configured-endpoint.js').then(({ loadSharedFiles }) => loadSharedFiles());
    filesByPlane.set(plane, files);
  }
  return files;
}

/**
 * The region requests to a custom S3 endpoint are signed for, as local mode chooses it
 * (shared/storage/open-location.ts): `--region`, else the region of the profile (`--aws-profile`,
 * AWS_PROFILE or the default one) in the shared config; undefined: us-east-1, the functions' default.
 */
export async function endpointSigningRegion(plane: ControlPlane, region: string | undefined): Promise<string | undefined> {
  if (region !== undefined) return region;
  const { profileRegion } = await import('../shared/storage/configured-endpoint.js');
  return profileRegion({ ...(plane.profile !== undefined && { profile: plane.profile }), files: await sharedFiles(plane) });
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
    return new LambdaClient({ ...(await baseConfig(plane, 'Lambda', INVOKE_SOCKET_TIMEOUT_MS)), maxAttempts: 1 });
  });
}

/** For reading function configuration: the SDK's retries. */
export function lambdaClient(plane: ControlPlane): Promise<LambdaClient> {
  return cached(keyOf('lambda', plane), async () => new (await import('@aws-sdk/client-lambda')).LambdaClient(await baseConfig(plane, 'Lambda')));
}

export function eventBridgeClient(plane: ControlPlane): Promise<EventBridgeClient> {
  return cached(keyOf('events', plane), async () => new (await import('@aws-sdk/client-eventbridge')).EventBridgeClient(await baseConfig(plane, 'EventBridge')));
}

export function efsClient(plane: ControlPlane): Promise<EFSClient> {
  return cached(keyOf('efs', plane), async () => new (await import('@aws-sdk/client-efs')).EFSClient(await baseConfig(plane, 'EFS')));
}

/** For doctor's read-only network checks (Describe* calls only). */
export function ec2Client(plane: ControlPlane): Promise<EC2Client> {
  return cached(keyOf('ec2', plane), async () => new (await import('@aws-sdk/client-ec2')).EC2Client(await baseConfig(plane, 'EC2')));
}

export function schedulerClient(plane: ControlPlane): Promise<SchedulerClient> {
  return cached(keyOf('scheduler', plane), async () => new (await import('@aws-sdk/client-scheduler')).SchedulerClient(await baseConfig(plane, 'Scheduler')));
}

/** The stack's status table: the cron catalog, the tenants' last outcomes, the freshness check. */
export function dynamoDbClient(plane: ControlPlane): Promise<DynamoDBClient> {
  return cached(keyOf('dynamodb', plane), async () => new (await import('@aws-sdk/client-dynamodb')).DynamoDBClient(await baseConfig(plane, 'DynamoDB')));
}

/** For doctor's queue depths (GetQueueUrl, GetQueueAttributes). */
export function sqsClient(plane: ControlPlane): Promise<SQSClient> {
  return cached(keyOf('sqs', plane), async () => new (await import('@aws-sdk/client-sqs')).SQSClient(await baseConfig(plane, 'SQS')));
}

function nonEmptyText(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
