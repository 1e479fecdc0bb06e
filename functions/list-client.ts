// The coordinating functions (fan-out, monitor) run outside the VPC and never mount the
// tenant volume: they learn the tenants from the list function, a page of sorted names at a
// time (protocol.ts: { names: true, after, limit }). A failed or malformed answer is an
// error here, never an empty list: "no tenants" must not be mistaken for "could not look".

import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';

import type { NamesPage } from '../shared/control-plane/fan-out.js';
import { awsErrorName, unreachableCode, unreachableDetail } from '../shared/control-plane/aws-errors.js';
import { errorFromBody, isFailureResponse, isRecord, isValidTenantList } from '../shared/control-plane/protocol.js';
import { OpenClawError, RemoteError } from '../shared/errors.js';
import { redact } from '../shared/storage/redact.js';

/** `signal` gives the page up (the caller's deadline): the list function's invocation goes on, its answer unread. */
export type ListPage = (after: string | undefined, limit: number, signal?: AbortSignal) => Promise<NamesPage>;

export function listFunctionPages(lambda: Pick<LambdaClient, 'send'>, functionName: string): ListPage {
  return async (after, limit, signal) => {
    let output;
    try {
      output = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify({ names: true, limit, ...(after !== undefined && { after }) })),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      throw invokeError(functionName, error);
    }
    let answer: unknown;
    try {
      answer = output.Payload === undefined || output.Payload.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(output.Payload));
    } catch {
      throw new RemoteError('REMOTE_PROTOCOL', `${functionName} answered something that is not JSON`);
    }
    if (output.FunctionError !== undefined) {
      const message = isRecord(answer) && typeof answer.errorMessage === 'string' ? answer.errorMessage.split('\n')[0] : output.FunctionError;
      // Lambda's type says what the message does not: Runtime.OutOfMemory for "signal: killed".
      const type = isRecord(answer) && typeof answer.errorType === 'string' ? `${answer.errorType}: ` : '';
      throw new RemoteError('REMOTE_FUNCTION_ERROR', `${functionName} failed: ${type}${message}`);
    }
    if (isFailureResponse(answer)) throw errorFromBody(answer.error);
    if (!isRecord(answer) || !isValidTenantList(answer.tenants) || (answer.next !== undefined && typeof answer.next !== 'string')) {
      throw new RemoteError('REMOTE_PROTOCOL', `unexpected answer from ${functionName}: not a page of tenant names`);
    }
    return { tenants: answer.tenants, ...(typeof answer.next === 'string' && { next: answer.next }) };
  };
}

/**
 * Why `functionName` could not be invoked, naming it: the SDK's own error read "unexpected
 * error: Rate Exceeded." or "unexpected error: Unexpected token '<'…", naming neither the list
 * function nor that the tenants could not be learnt. The caller's deadline stays its own error.
 */
function invokeError(functionName: string, error: unknown): unknown {
  const name = awsErrorName(error);
  if (error instanceof OpenClawError || name === 'AbortError') return error;
  const message = redact(String((error as { message?: unknown } | undefined)?.message ?? error).split('\n')[0]!);
  const what = `cannot learn the tenants from ${functionName}`;
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  if (unreachableCode(error) !== undefined) return new RemoteError('AWS_ERROR', `${what}: Lambda cannot be reached (${unreachableDetail(error, message)})`, { cause: error });
  if (name === 'SyntaxError' && typeof status === 'number') return new RemoteError('AWS_ERROR', `${what}: the answer (HTTP ${status}) is no Lambda answer, perhaps a proxy's page`, { cause: error });
  switch (name) {
    case 'TooManyRequestsException':
      return new RemoteError('THROTTLED', `${what}: Lambda throttled the invocation (${message}): the account's or the function's concurrency is in use`, { cause: error });
    case 'AccessDeniedException':
      return new RemoteError('ACCESS_DENIED', `${what}: access denied (${message})`, { cause: error });
    case 'ResourceNotFoundException':
      return new RemoteError('AWS_ERROR', `${what}: no such function (${message}); OPENCLAW_LIST_FUNCTION names it`, { cause: error });
    default:
      return new RemoteError('AWS_ERROR', `${what}: ${name}: ${message}`, { cause: error });
  }
}

/** Every tenant, page by page. */
export async function allTenantNames(listPage: ListPage, pageSize = 1000): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  do {
    const page = await listPage(after, pageSize);
    names.push(...page.tenants);
    after = page.next;
  } while (after !== undefined);
  return names;
}
