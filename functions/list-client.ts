// The coordinating functions (fan-out, monitor) run outside the VPC and never mount the
// tenant volume: they learn the tenants from the list function, a page of sorted names at a
// time (protocol.ts: { names: true, after, limit }). A failed or malformed answer is an
// error here, never an empty list: "no tenants" must not be mistaken for "could not look".

import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';

import type { NamesPage } from '../shared/control-plane/fan-out.js';
import { errorFromBody, isFailureResponse, isRecord, isValidTenantList } from '../shared/control-plane/protocol.js';
import { RemoteError } from '../shared/errors.js';

/** `signal` gives the page up (the caller's deadline): the list function's invocation goes on, its answer unread. */
export type ListPage = (after: string | undefined, limit: number, signal?: AbortSignal) => Promise<NamesPage>;

export function listFunctionPages(lambda: Pick<LambdaClient, 'send'>, functionName: string): ListPage {
  return async (after, limit, signal) => {
    const output = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify({ names: true, limit, ...(after !== undefined && { after }) })),
      }),
      { abortSignal: signal },
    );
    let answer: unknown;
    try {
      answer = output.Payload === undefined || output.Payload.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(output.Payload));
    } catch {
      throw new RemoteError('REMOTE_PROTOCOL', `${functionName} answered something that is not JSON`);
    }
    if (output.FunctionError !== undefined) {
      const message = isRecord(answer) && typeof answer.errorMessage === 'string' ? answer.errorMessage.split('\n')[0] : output.FunctionError;
      throw new RemoteError('REMOTE_FUNCTION_ERROR', `${functionName} failed: ${message}`);
    }
    if (isFailureResponse(answer)) throw errorFromBody(answer.error);
    if (!isRecord(answer) || !isValidTenantList(answer.tenants) || (answer.next !== undefined && typeof answer.next !== 'string')) {
      throw new RemoteError('REMOTE_PROTOCOL', `unexpected answer from ${functionName}: not a page of tenant names`);
    }
    return { tenants: answer.tenants, ...(typeof answer.next === 'string' && { next: answer.next }) };
  };
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
