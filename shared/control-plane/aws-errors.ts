// How the AWS SDK's failures of remote mode's control-plane calls (Lambda, EventBridge, EFS,
// EC2) become typed errors: one line each, naming what was being done and where, with the
// SDK's own text masked by `redact`. Works on the shape of the errors (name, message), so the
// SDK is not imported.

import { AbortedError, OpenClawError, RemoteError, UsageError } from '../errors.js';
import { networkReason } from '../network-reasons.js';
import { redact } from '../storage/redact.js';
import type { ControlPlane } from './deployment.js';

/** Node's codes for a connection that never reached AWS (no DNS, no route, refused, cut). */
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The Node code of an SDK failure that never reached AWS (`ECONNREFUSED`…), or undefined. */
export function unreachableCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code) ? code : undefined;
}

/** The SDK's `message` of a failure that never reached AWS, with what its code means when the code alone does not say. */
export function unreachableDetail(error: unknown, message: string): string {
  const meaning = networkReason(unreachableCode(error));
  return meaning === undefined ? message : `${message}; ${meaning}`;
}

// The region each control plane's clients call, whichever source gave it (--region, AWS_REGION,
// the profile's): noted when its first client is made, for messages to say where they looked.
const regionsInUse = new WeakMap<ControlPlane, string>();

/** Notes the region `plane`'s clients were made for (cli/aws.ts), when `--region` did not give it. */
export function noteRegionInUse(plane: ControlPlane, region: string | undefined): void {
  if (region !== undefined) regionsInUse.set(plane, region);
}

/** The region `plane` is called in, as far as it is known: `--region`, else the one its clients were made for. */
export function regionInUse(plane: ControlPlane): string | undefined {
  return plane.region ?? regionsInUse.get(plane);
}

interface AwsErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The AWS error's name (`ResourceNotFoundException`), or `Error`. */
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
  const region = regionInUse(plane);
  const where = region === undefined ? '' : ` in ${region}`;
  if (name === 'AbortError') return new AbortedError(`interrupted while ${what}`);
  if (/region is missing/i.test(message)) {
    return new UsageError('no AWS region for the gateway: give --region, or set AWS_REGION or a region in the profile', 'NO_REGION');
  }
  if (unreachableCode(error) !== undefined) {
    return new RemoteError('AWS_ERROR', `${what}: cannot reach AWS${where} (${unreachableDetail(error, message)}): check the network (a proxy, a VPC endpoint) and --region`);
  }
  // An answer the SDK could not parse (an HTML page of a proxy, a load balancer's 502): its
  // parser's text ("Unexpected token '<'…") says nothing of where it came from.
  const status = (error as AwsErrorShape | undefined)?.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (name === 'SyntaxError' || /Deserialization error/.test(String((error as AwsErrorShape | undefined)?.message)))) {
    return new RemoteError(
      'AWS_ERROR',
      `${what}: the answer${where} (HTTP ${status}) is no AWS answer, perhaps a proxy's page: ${status >= 500 ? 'try again shortly; if it stays, ' : ''}check the network (a proxy, a VPC endpoint) and --region`,
    );
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
