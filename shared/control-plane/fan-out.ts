// The fan-out: one backup per tenant, as messages on the work queue (work-queue.ts), over
// the clients it is given (the fan-out function wires SQS and a page source that invokes
// the list function; tests and the 10,000-tenant simulation mock them).
//
// Limits: the tenant list is read a page at a time (`pageSize` names, 1,000 by default), so
// memory does not grow with the number of tenants; each page is sent in batches of 10
// (SQS's SendMessageBatch maximum), at most `concurrency` batches in flight. A throttled or
// failed request, or a batch entry SQS failed on its side, is sent again after an
// exponential back-off with full jitter (base × 2^attempt, at most `maxDelayMs`, times a
// random factor), at most `maxAttempts` times; what still fails is reported by tenant, never
// silently dropped. An entry SQS refuses as the sender's fault, and a request error that no
// retry can fix (no such queue, access denied), are not retried: the first fails its
// tenant, the second ends the fan-out with a typed error.

import { SendMessageBatchCommand, type SendMessageBatchCommandOutput, type SQSClient } from '@aws-sdk/client-sqs';

import { RemoteError } from '../errors.js';
import { expandTemplate } from '../schedule/destination-template.js';
import { redact } from '../storage/redact.js';
import type { S3ObjectFlags } from '../storage/s3-object-settings.js';
import { encodeWorkMessage, WORK_MESSAGE_VERSION } from './work-queue.js';

/** SQS's most entries per SendMessageBatch. */
export const SQS_BATCH_SIZE = 10;

export interface FanOutOptions {
  /** Names per list page. @default 1000 */
  readonly pageSize?: number;
  /** Batches in flight at once. @default 4 */
  readonly concurrency?: number;
  /** Sends of one entry at most, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** The first back-off's ceiling. @default 200 */
  readonly baseDelayMs?: number;
  /** No back-off is longer. @default 20000 */
  readonly maxDelayMs?: number;
}

/** One page of tenant names, sorted, and the name to ask for the next one after (absent: the last page). */
export interface NamesPage {
  readonly tenants: readonly string[];
  readonly next?: string;
}

export interface FanOutDeps {
  readonly sqs: Pick<SQSClient, 'send'>;
  readonly queueUrl: string;
  /** `signal`: the fan-out's deadline; a page not answered by then is given up. */
  listPage(after: string | undefined, limit: number, signal?: AbortSignal): Promise<NamesPage>;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
  /** Stops the fan-out between batches (the invocation's deadline). */
  readonly signal?: AbortSignal;
}

/** The run being fanned out: a validated template and the time its dates are filled from. */
export interface FanOutRun {
  readonly template: string;
  readonly overwrite?: boolean;
  readonly time: Date;
  readonly timeZone?: string;
  readonly runId: string;
  readonly cronName?: string;
  /** age1… recipients every tenant's archive is encrypted to (checked by the caller). */
  readonly encryptTo?: readonly string[];
  /** How every archive's object is stored (WorkMessage's `storage`). */
  readonly storage?: S3ObjectFlags;
  /** A run taken over from an earlier fan-out: the tenants after this one (in name order). */
  readonly after?: string;
}

export interface FanOutFailure {
  readonly tenant: string;
  readonly code: string;
  readonly message: string;
}

export interface FanOutOutcome {
  /** Tenants listed. */
  readonly tenants: number;
  readonly queued: number;
  readonly failed: readonly FanOutFailure[];
  readonly pages: number;
  readonly requests: number;
  /** Requests or entries answered with throttling or a failure on SQS's side, each followed by a back-off. */
  readonly retries: number;
  /** False when the deadline stopped the fan-out before the last page. */
  readonly complete: boolean;
  /** The last tenant listed (names come in order): when not complete, the tenants after it were not listed. */
  readonly lastListed?: string;
  /**
   * When the deadline left tenants out (not complete, or some cut short: ABORTED), where the
   * run can go on from (past `run.after`): every tenant up to it was queued or failed for a
   * reason of its own. Absent: nothing was got past, or nothing left out.
   */
  readonly resumeAfter?: string;
  /** The first tenant's destination. */
  readonly sample?: string;
}

interface Entry {
  readonly id: string;
  readonly tenant: string;
  readonly body: string;
}

const RETRIABLE_ERRORS = new Set([
  'ThrottlingException',
  'RequestThrottled',
  'Throttling',
  'KmsThrottled',
  'KMS.ThrottlingException',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
  'RequestTimeout',
  'TimeoutError',
  'AbortError',
]);

function isRetriable(error: unknown): boolean {
  const shape = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; code?: string } | undefined;
  const status = shape?.$metadata?.httpStatusCode;
  return (
    RETRIABLE_ERRORS.has(shape?.name ?? '') ||
    shape?.$retryable !== undefined ||
    (status !== undefined && (status >= 500 || status === 429)) ||
    ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN'].includes(shape?.code ?? '')
  );
}

export async function fanOut(run: FanOutRun, deps: FanOutDeps, options: FanOutOptions = {}): Promise<FanOutOutcome> {
  const pageSize = options.pageSize ?? 1000;
  const concurrency = options.concurrency ?? 4;
  const maxAttempts = options.maxAttempts ?? 8;
  const baseDelayMs = options.baseDelayMs ?? 200;
  const maxDelayMs = options.maxDelayMs ?? 20_000;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = deps.random ?? Math.random;
  const aborted = () => deps.signal?.aborted === true;
  // The deadline ends a back-off under way (up to maxDelayMs, which with a request after it
  // would outlast the deadline's margin). A request in flight is let finish (its client's
  // timeouts bound it): given up, its messages might be queued and yet named as not.
  const deadlineReached = new Promise<void>((resolve) => {
    if (deps.signal === undefined) return;
    if (deps.signal.aborted) resolve();
    else deps.signal.addEventListener('abort', () => resolve(), { once: true });
  });

  const failed: FanOutFailure[] = [];
  let tenants = 0;
  let queued = 0;
  let pages = 0;
  let requests = 0;
  let retries = 0;
  let sample: string | undefined;
  let complete = true;
  let lastListed: string | undefined;
  let resumeAfter = run.after;
  const cutShort = new Set<string>();

  const destination = (tenant: string) =>
    expandTemplate(run.template, { time: run.time, tenant, ...(run.timeZone !== undefined && { timeZone: run.timeZone }) });
  const backOff = (attempt: number) => Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));

  async function sendBatch(batch: readonly Entry[]): Promise<void> {
    let pending = batch;
    let lastProblem = { code: 'THROTTLED', message: 'SQS kept throttling' };
    // The last request failed without an answer (a timeout, a reset): SQS may have queued it.
    let unanswered = false;
    for (let attempt = 1; attempt <= maxAttempts && pending.length > 0; attempt++) {
      if (attempt > 1) {
        retries++;
        await Promise.race([sleep(backOff(attempt - 1)), deadlineReached]);
      }
      if (aborted()) break;
      let output: SendMessageBatchCommandOutput;
      try {
        requests++;
        output = await deps.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: deps.queueUrl, Entries: pending.map((entry) => ({ Id: entry.id, MessageBody: entry.body })) }),
        );
      } catch (error) {
        const name = (error as Error | undefined)?.name ?? 'Error';
        const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
        // An answer the SDK could not parse (a proxy's HTML page): its parser's text says nothing of where it came from.
        const problem =
          name === 'SyntaxError' && status !== undefined
            ? `the answer (HTTP ${status}) is no SQS answer, perhaps a proxy's page`
            : `${name}: ${redact(String((error as Error | undefined)?.message ?? error).split('\n')[0]!)}`;
        if (!isRetriable(error)) {
          throw new RemoteError('AWS_ERROR', `sending to the work queue: ${problem} (${queued} of ${tenants} tenants listed so far were queued)`);
        }
        lastProblem = { code: name === 'ThrottlingException' || name === 'RequestThrottled' ? 'THROTTLED' : 'SQS', message: problem };
        unanswered = status === undefined;
        continue;
      }
      unanswered = false;
      const byId = new Map(pending.map((entry) => [entry.id, entry]));
      queued += output.Successful?.length ?? 0;
      const again: Entry[] = [];
      for (const failure of output.Failed ?? []) {
        const entry = byId.get(failure.Id ?? '');
        if (entry === undefined) continue;
        if (failure.SenderFault === true) {
          failed.push({ tenant: entry.tenant, code: failure.Code ?? 'SQS', message: `SQS refused the message: ${failure.Message ?? failure.Code ?? 'sender fault'}` });
        } else {
          again.push(entry);
          lastProblem = { code: failure.Code === 'RequestThrottled' || failure.Code === 'ThrottlingException' ? 'THROTTLED' : 'SQS', message: [failure.Code ?? 'failed', failure.Message].filter((part) => part !== undefined && part !== '').join(': ') };
        }
      }
      pending = again;
    }
    for (const entry of pending) {
      if (aborted()) cutShort.add(entry.tenant);
      const cut = unanswered
        ? `the fan-out ran out of time after a request that got no answer (${lastProblem.message}): this tenant may have been queued`
        : 'the fan-out ran out of time before it could queue this tenant';
      failed.push(aborted() ? { tenant: entry.tenant, code: 'ABORTED', message: cut } : { tenant: entry.tenant, ...lastProblem, message: `not queued after ${maxAttempts} attempts: ${lastProblem.message}` });
    }
  }

  let after = run.after;
  do {
    if (aborted()) {
      complete = false;
      break;
    }
    let page: NamesPage;
    try {
      page = await deps.listPage(after, pageSize, deps.signal);
    } catch (error) {
      if (!aborted()) throw error;
      complete = false;
      break;
    }
    pages++;
    tenants += page.tenants.length;
    lastListed = page.tenants[page.tenants.length - 1] ?? lastListed;
    const entries = page.tenants.map((tenant, index): Entry => {
      const to = destination(tenant);
      sample ??= to;
      return {
        id: String(index % SQS_BATCH_SIZE),
        tenant,
        body: encodeWorkMessage({
          version: WORK_MESSAGE_VERSION,
          kind: 'backup',
          tenant,
          to,
          ...(run.overwrite === true && { overwrite: true }),
          ...(run.encryptTo !== undefined && run.encryptTo.length > 0 && { encryptTo: run.encryptTo }),
          ...(run.storage !== undefined && { storage: run.storage }),
          run: {
            id: run.runId,
            time: run.time.toISOString(),
            template: run.template,
            ...(run.cronName !== undefined && { cronName: run.cronName }),
          },
        }),
      };
    });
    const batches: Entry[][] = [];
    for (let start = 0; start < entries.length; start += SQS_BATCH_SIZE) batches.push(entries.slice(start, start + SQS_BATCH_SIZE));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) await sendBatch(batches[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, worker));
    const firstCutShort = page.tenants.findIndex((tenant) => cutShort.has(tenant));
    if (firstCutShort === -1) resumeAfter = page.tenants[page.tenants.length - 1] ?? resumeAfter;
    else if (firstCutShort > 0) resumeAfter = page.tenants[firstCutShort - 1];
    after = page.next;
    if (after !== undefined && aborted()) complete = false;
  } while (after !== undefined && complete);

  return {
    tenants,
    queued,
    failed,
    pages,
    requests,
    retries,
    complete,
    ...(lastListed !== undefined && { lastListed }),
    // Only past where this run began (names in code point order, as the list function pages
    // them): a list that answered out of order could otherwise hand the same tenants on and on.
    ...((!complete || cutShort.size > 0) && resumeAfter !== undefined && (run.after === undefined || resumeAfter > run.after) && { resumeAfter }),
    ...(sample !== undefined && { sample }),
  };
}
