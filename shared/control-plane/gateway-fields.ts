// Version skew between the CLI and a deployed gateway: operators update the CLI and the stack
// at different times, so a request may carry a field the gateway's functions do not know.
//
// The rule every function has followed since the first release: a request is parsed whole and
// strictly before anything is read or written, and a field the parser does not know is refused
// (INVALID_REQUEST "unknown field …"), never dropped. So an older gateway never runs a
// `--sse` backup unencrypted, nor an `--encrypt-to` one in plaintext. A direct command then
// fails in one line, which the CLI completes with the fix (olderGatewayError); a field an older
// gateway may go without (`pages`, `bounded`) is sent, and asked again without on that refusal.
//
// A schedule is different: `cron add` stores the payload and the target refuses it at every
// run, with nobody there to see it. So before storing a payload that carries a field added
// since the first gateway with schedules (ADDED_FIELDS), `cron add` asks the target's own
// parser (fieldCheckRequest): the same fields, in a request that is parsed whole and then
// refused for a reason that is no field's before any work (a dry run for a tenant name no
// tenant can have; a fan-out with a run ID no run can have). "unknown field" means the gateway
// predates one of them, and `cron add` refuses in one line naming the flag and the fix. Every
// deployed version parses so: none needs anything added to answer. Pure: no SDK.

import { InvalidRequestError, isOpenClawError, UsageError, type OpenClawError } from '../errors.js';
import { isFailureResponse, isRecord } from './protocol.js';

/**
 * The fields of a scheduled payload (a backup's or prune's command, a fan-out's) added since the
 * first gateway with schedules (12-04), with the flag each comes from. A field added to
 * BACKUP_COMMAND_FIELDS, PRUNE_COMMAND_FIELDS, FANOUT_FIELDS or STORAGE_KEYS goes here too
 * (test/gateway-fields.test.ts holds them to it).
 */
export const ADDED_FIELDS: Readonly<Record<string, string>> = {
  encryptTo: '--encrypt-to',
  // A fan-out's `storage` came with these (a backup's and a prune's is as old as schedules).
  'storage.sse': '--sse',
  'storage.sseKmsKeyId': '--sse-kms-key-id',
  'storage.storageClass': '--storage-class',
  'storage.deleteIfMatch': '--delete-if-match',
  // A prune's retention rules since restic's hourly and within.
  'keep.hourly': '--keep-hourly',
  'keep.within': '--keep-within',
};

/** Where a scheduled payload goes: the function whose parser is asked. */
export type CheckedRole = 'backup' | 'prune' | 'fanout';

/** The added fields a payload carries (ADDED_FIELDS' keys), in the order of that table. */
export function addedFieldsOf(payload: Record<string, unknown>): string[] {
  const nested = (field: string) => {
    const dot = field.indexOf('.');
    if (dot === -1) return payload[field];
    const record = payload[field.slice(0, dot)];
    return isRecord(record) ? record[field.slice(dot + 1)] : undefined;
  };
  return Object.keys(ADDED_FIELDS).filter((field) => nested(field) !== undefined);
}

/** The tenant name of a field check's dry run: no tenant can have it (names.ts), so the function refuses it after parsing. */
export const FIELD_CHECK_TENANT = 'cron add: field check';
/** The run ID of a fan-out's field check: no run can have it, so the fan-out refuses it after parsing and before listing. */
export const FIELD_CHECK_RUN_ID = 'cron add: field check';

/**
 * The request that asks `role`'s parser whether it takes `payload`'s fields, changing nothing:
 * a backup's or prune's dry run (no completion event) for FIELD_CHECK_TENANT, refused with
 * INVALID_NAME; a direct fan-out (no cronName: not retried) with FIELD_CHECK_RUN_ID, refused
 * with INVALID_REQUEST before any tenant is listed. `payload` is the backup's or prune's
 * command, with `to` filled in for a sample, or the fan-out's payload.
 */
export function fieldCheckRequest(role: CheckedRole, payload: Record<string, unknown>): Record<string, unknown> {
  if (role === 'fanout') {
    const { cronName: _cronName, time: _time, runId: _runId, ...rest } = payload;
    return { ...rest, runId: FIELD_CHECK_RUN_ID };
  }
  return { ...payload, tenant: FIELD_CHECK_TENANT, dryRun: true };
}

/**
 * The added fields the function refused, judged from its answer to fieldCheckRequest: those of
 * `sent` an "unknown field" refusal names (all of them when it names none of them, e.g. the
 * dry run of a gateway older than dry runs); empty when the answer is any other (the fields
 * were parsed).
 */
export function refusedFields(answer: unknown, sent: readonly string[]): string[] {
  if (!isFailureResponse(answer) || answer.error.code !== 'INVALID_REQUEST') return [];
  const named = unknownFieldNames(answer.error.message);
  if (named === undefined) return [];
  // "sse" names storage.sse; a fan-out older than its `storage` names "storage": every storage.* sent.
  const refused = sent.filter((field) => named.includes(field) || field.split('.').some((part) => named.includes(part)));
  return refused.length > 0 ? refused : [...sent];
}

/** The names an "unknown field(s) "a", "b"" refusal lists; undefined when the message is no such refusal. */
function unknownFieldNames(message: string): string[] | undefined {
  const match = /unknown fields? ((?:"[^"]*"(?:, )?)+)/.exec(message);
  return match === null ? undefined : [...match[1]!.matchAll(/"([^"]*)"/g)].map((quoted) => quoted[1]!);
}

/** The flags `fields` (ADDED_FIELDS' keys) come from, for a message. */
export function flagsOf(fields: readonly string[]): string {
  return [...new Set(fields.map((field) => ADDED_FIELDS[field] ?? field))].join(', ');
}

/** `cron add`'s refusal of a schedule `functionName` would refuse at every run. */
export function olderTargetError(functionName: string, refused: readonly string[]): UsageError {
  const flags = flagsOf(refused);
  return new UsageError(
    `${functionName} was deployed by an older version that does not take ${flags}, so it would refuse this cron at every run: ` +
      'update the stack (cdk deploy), then add the cron again',
    'REMOTE_UNSUPPORTED',
  );
}

const SAME_VERSION_QUESTION = ' (are the CLI and the gateway the same version?)';

/**
 * A function's refusal of a field (or an operation) it does not know, with the fix: the gateway
 * is older than this CLI. Any other error as it is.
 */
export function olderGatewayError(functionName: string, error: OpenClawError): OpenClawError {
  if (!(isOpenClawError(error) && error.code === 'INVALID_REQUEST' && /unknown (fields? "|operation )/.test(error.message))) return error;
  return new InvalidRequestError(
    `${error.message.replace(SAME_VERSION_QUESTION, '')}: ${functionName} was deployed by an older version than this CLI; update the stack (cdk deploy)`,
  );
}
