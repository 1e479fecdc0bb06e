// The AWS clients the functions create themselves (EventBridge for completion events; SQS,
// Lambda and DynamoDB for the fan-out and the monitor; Secrets Manager for the restore
// function's `--identity-secret`), built in one place so none of them goes without
// bounds: a connect timeout and a
// per-request timeout from the configuration (OPENCLAW_CONNECT_TIMEOUT_MS,
// OPENCLAW_REQUEST_TIMEOUT_MS, set by the stack) and two attempts at most. Each call is
// further bounded by the invocation's time left (see events.ts). The S3 clients are made by
// the core (shared/storage/s3-client.ts: connect and socket timeouts of their own) and every
// transfer runs under the invocation's deadline signal.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, type FunctionConfig } from '../shared/control-plane/function-config.js';

/** Attempts per request, the first included: one retry of a throttled or broken call. */
export const CLIENT_MAX_ATTEMPTS = 2;

export interface ClientTimeouts {
  readonly connectionTimeout: number;
  readonly requestTimeout: number;
  /**
   * Without it, @smithy/node-http-handler 4.x only logs a warning when `requestTimeout`
   * passes (the setting used to be a socket idle timeout): the request would go on.
   */
  readonly throwOnRequestTimeout: true;
}

export function clientTimeouts(config: Pick<FunctionConfig, 'connectTimeoutMs' | 'requestTimeoutMs'>): ClientTimeouts {
  return {
    connectionTimeout: config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    requestTimeout: config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  };
}

export function eventBridgeClientConfig(config: Pick<FunctionConfig, 'connectTimeoutMs' | 'requestTimeoutMs'>): EventBridgeClientConfig {
  return { maxAttempts: CLIENT_MAX_ATTEMPTS, requestHandler: clientTimeouts(config) };
}

/** `overrides` is for tests (an endpoint, a region); the timeouts always apply. */
export function createEventBridgeClient(
  config: Pick<FunctionConfig, 'connectTimeoutMs' | 'requestTimeoutMs'>,
  overrides: Omit<EventBridgeClientConfig, 'requestHandler' | 'maxAttempts'> = {},
): EventBridgeClient {
  return new EventBridgeClient({ ...overrides, ...eventBridgeClientConfig(config) });
}

type Timeouts = Pick<FunctionConfig, 'connectTimeoutMs' | 'requestTimeoutMs'>;

/** The fan-out's queue client: the SDK's own retry once, then the fan-out's back-off (control-plane/fan-out.ts). */
export function createSqsClient(config: Timeouts): SQSClient {
  return new SQSClient({ maxAttempts: CLIENT_MAX_ATTEMPTS, requestHandler: clientTimeouts(config) });
}

export function createDynamoDbClient(config: Timeouts): DynamoDBClient {
  return new DynamoDBClient({ maxAttempts: 3, requestHandler: clientTimeouts(config) });
}

/** The list function answers within its own timeout (one minute): the invoke may take that long. */
export const LIST_INVOKE_TIMEOUT_MS = 70_000;

/** For invoking the list function: one attempt (a page is asked for again by whoever needs it), up to its timeout. */
export function createListInvokeClient(config: Timeouts): LambdaClient {
  return new LambdaClient({ maxAttempts: 1, requestHandler: { ...clientTimeouts(config), requestTimeout: LIST_INVOKE_TIMEOUT_MS } });
}

/**
 * For a fan-out's asynchronous invocation of itself (the rest of its run): one attempt (a
 * second might start the rest twice), bounded by the clients' timeouts, well inside the
 * fan-out's deadline margin (the list client's are a page's whole minute).
 */
export function createHandOnClient(config: Timeouts): LambdaClient {
  return new LambdaClient({ maxAttempts: 1, requestHandler: clientTimeouts(config) });
}

export function createSecretsManagerClient(config: Timeouts): SecretsManagerClient {
  return new SecretsManagerClient({ maxAttempts: CLIENT_MAX_ATTEMPTS, requestHandler: clientTimeouts(config) });
}
