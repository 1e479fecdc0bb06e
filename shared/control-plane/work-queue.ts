// The messages of the work queue (`<prefix>-work`): one per tenant to back up, written by
// the fan-out, read by the backup function through its SQS event source mapping. The
// format is versioned and documented in docs/scale.md ("The work queue's messages"), since
// other producers and consumers will share the queue (backups that continue across
// invocations, issue 19). Pure: no SDK.
//
// Version 1, a JSON object:
//   { "version": 1, "kind": "backup", "tenant": "acme",
//     "to": "s3://bucket/backups/acme/2026-06-03.tar.zst",   the destination, already expanded
//     "overwrite": true,                                     optional, only when asked for
//     "encryptTo": ["age1…"],                                optional: age recipients (public keys)
//     "storage": { "sse": "aws:kms", "sseKmsKeyId": "…",      optional: how the archive's object is
//                  "storageClass": "STANDARD_IA" }           stored (--sse, --sse-kms-key-id, --storage-class)
//     "run": { "id": "…", "time": "2026-06-03T03:00:00Z",    the fan-out run and its time
//              "template": "s3://bucket/backups/{tenant}/{date}.tar.zst",
//              "cronName": "nightly" },                      optional: the all-tenants cron
//     "continues": { "chain": "…", "trigger": "direct" } }   optional: the next piece of a
//                  backup that outlasted an invocation (backup/backup.ts), how it was started
// A consumer refuses (and so, after the queue's retries, parks in the work DLQ for a later
// redrive) a message whose version or kind it does not know or that has a field it does not
// know: a new field or kind comes with a consumer that understands it, and a change of
// meaning with a new version (NewerWorkMessageError). Any other message that does not read
// (not JSON, a field of the wrong type) never will: the consumer answers it instead. Messages stay far below SQS's 256 KiB (a few hundred bytes;
// with the most recipients, MAX_RECIPIENTS of ~62 characters each, about 5 KB).

import { backupRecipients, MAX_RECIPIENTS } from '../archive/encrypted-archive.js';
import { InvalidRequestError } from '../errors.js';
import { parseS3Url } from '../storage/s3-url.js';
import { S3_OBJECT_FLAGS, s3ObjectSettings, type S3ObjectFlags } from '../storage/s3-object-settings.js';
import { isValidTenantName } from '../tenant/names.js';

export const WORK_MESSAGE_VERSION = 1;

/** What the fan-out run that queued a message was. */
export interface WorkRun {
  /** The Scheduler execution's ID, or the fan-out invocation's request ID. */
  readonly id: string;
  /** ISO 8601: the time the destination's dates were filled from. */
  readonly time: string;
  /** The destination template, as given. */
  readonly template: string;
  readonly cronName?: string;
}

export interface BackupWorkMessage {
  readonly version: typeof WORK_MESSAGE_VERSION;
  readonly kind: 'backup';
  readonly tenant: string;
  /** `s3://bucket/key`, expanded for this tenant and run. */
  readonly to: string;
  readonly overwrite?: boolean;
  /** age1… recipients the archive is encrypted to; absent: stored as plain tar.zst. */
  readonly encryptTo?: readonly string[];
  /** `--sse`, `--sse-kms-key-id`, `--storage-class`: what the archive's object is created with; absent: the bucket's defaults. */
  readonly storage?: S3ObjectFlags;
  readonly run: WorkRun;
}

/** How the backup a continuation message continues was started (functions/events.ts Trigger). */
export type ContinuedTrigger = 'direct' | 'schedule' | 'queue';

/** The next piece of a backup in pieces: the chain to go on with (backup/continuation.ts). */
export interface Continues {
  readonly chain: string;
  readonly trigger: ContinuedTrigger;
}

export type WorkMessage = BackupWorkMessage & { readonly continues?: Continues };

export function encodeWorkMessage(message: WorkMessage): string {
  return JSON.stringify(message);
}

/** A message of a version, kind or field this consumer does not know: one deployed later reads it. */
export class NewerWorkMessageError extends InvalidRequestError {}

/** A message no consumer reads (not JSON, a field of the wrong type), with the tenant it names when it names one. */
export class UnreadableWorkMessageError extends InvalidRequestError {
  constructor(
    message: string,
    readonly tenant: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The tenant a body that did not read as a message names, when it is JSON with a valid tenant name. */
export function tenantNamedIn(body: string): string | undefined {
  try {
    const tenant: unknown = (JSON.parse(body) as { tenant?: unknown } | null)?.tenant;
    return typeof tenant === 'string' && isValidTenantName(tenant) ? tenant : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The message in an SQS record's body, validated; an InvalidRequestError says what is wrong
 * with it, a NewerWorkMessageError that a newer consumer may read it.
 */
export function parseWorkMessage(body: string): WorkMessage {
  const what = 'work queue message';
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new InvalidRequestError(`${what}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRequestError(`${what}: expected a JSON object`);
  const record = value as Record<string, unknown>;
  if (record.version !== WORK_MESSAGE_VERSION) {
    throw new NewerWorkMessageError(
      `${what}: version ${JSON.stringify(record.version)} is not one this backup function knows (${WORK_MESSAGE_VERSION}): deploy the version that wrote it, then redrive the work DLQ`,
    );
  }
  if (record.kind !== 'backup') throw new NewerWorkMessageError(`${what}: kind ${JSON.stringify(record.kind)} is not one this backup function knows ("backup")`);
  unknownKeys(record, ['version', 'kind', 'tenant', 'to', 'overwrite', 'encryptTo', 'storage', 'run', 'continues'], what);
  const tenant = record.tenant;
  if (typeof tenant !== 'string' || !isValidTenantName(tenant)) throw new InvalidRequestError(`${what}: "tenant" must be a tenant name`);
  if (typeof record.to !== 'string') throw new InvalidRequestError(`${what}: "to" must be an s3:// URL`);
  try {
    parseS3Url(record.to);
  } catch (error) {
    throw new InvalidRequestError(`${what}: "to": ${(error as Error).message}`);
  }
  if (record.overwrite !== undefined && typeof record.overwrite !== 'boolean') throw new InvalidRequestError(`${what}: "overwrite" must be true or false`);
  const encryptTo = recipientsOf(record.encryptTo, what);
  const storage = record.storage === undefined ? undefined : objectFlagsOf(record.storage, what);
  const run = record.run;
  if (typeof run !== 'object' || run === null || Array.isArray(run)) throw new InvalidRequestError(`${what}: "run" must be an object`);
  const runRecord = run as Record<string, unknown>;
  unknownKeys(runRecord, ['id', 'time', 'template', 'cronName'], `${what} run`);
  for (const key of ['id', 'time', 'template'] as const) {
    if (typeof runRecord[key] !== 'string') throw new InvalidRequestError(`${what}: "run.${key}" must be a string`);
  }
  if (Number.isNaN(Date.parse(runRecord.time as string))) throw new InvalidRequestError(`${what}: "run.time" must be an ISO 8601 time`);
  if (runRecord.cronName !== undefined && typeof runRecord.cronName !== 'string') throw new InvalidRequestError(`${what}: "run.cronName" must be a string`);
  const continues = record.continues === undefined ? undefined : parseContinues(record.continues, what);
  return {
    version: WORK_MESSAGE_VERSION,
    kind: 'backup',
    tenant,
    to: record.to,
    ...(record.overwrite === true && { overwrite: true }),
    ...(encryptTo.length > 0 && { encryptTo }),
    ...(storage !== undefined && { storage }),
    run: {
      id: runRecord.id as string,
      time: runRecord.time as string,
      template: runRecord.template as string,
      ...(typeof runRecord.cronName === 'string' && { cronName: runRecord.cronName }),
    },
    ...(continues !== undefined && { continues }),
  };
}

function parseContinues(value: unknown, what: string): Continues {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRequestError(`${what}: "continues" must be an object`);
  const record = value as Record<string, unknown>;
  unknownKeys(record, ['chain', 'trigger'], `${what} continues`);
  if (typeof record.chain !== 'string' || !/^[0-9a-f]{24}$/.test(record.chain)) throw new InvalidRequestError(`${what}: "continues.chain" must name a chain`);
  if (record.trigger !== 'direct' && record.trigger !== 'schedule' && record.trigger !== 'queue') {
    throw new InvalidRequestError(`${what}: "continues.trigger" must be "direct", "schedule" or "queue"`);
  }
  return { chain: record.chain, trigger: record.trigger };
}

/** `storage`: the object's settings, each checked as the CLI checks its flags. */
function objectFlagsOf(value: unknown, what: string): S3ObjectFlags {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidRequestError(`${what}: "storage" must be an object`);
  const record = value as Record<string, unknown>;
  unknownKeys(record, S3_OBJECT_FLAGS.map(([key]) => key), `${what} storage`);
  if (!Object.values(record).every((item) => typeof item === 'string')) throw new InvalidRequestError(`${what}: "storage" holds strings only`);
  const flags = record as S3ObjectFlags;
  try {
    s3ObjectSettings(flags);
  } catch (error) {
    throw new InvalidRequestError(`${what}: "storage": ${(error as Error).message}`);
  }
  return flags;
}

/** `encryptTo`: a list of age1… recipients, each one checked. */
function recipientsOf(value: unknown, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_RECIPIENTS || !value.every((item) => typeof item === 'string')) {
    throw new InvalidRequestError(`${what}: "encryptTo" must be a list of at most ${MAX_RECIPIENTS} age recipients (age1… strings)`);
  }
  try {
    return backupRecipients(value as string[]).map((recipient) => recipient.text);
  } catch (error) {
    throw new InvalidRequestError(`${what}: "encryptTo": ${(error as Error).message}`);
  }
}

function unknownKeys(record: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(record).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new NewerWorkMessageError(`${what}: unknown field${unknown.length === 1 ? '' : 's'} ${unknown.map((key) => JSON.stringify(key)).join(', ')} (written by a newer version?)`);
  }
}

// ---------------------------------------------------------------------------------------
// The restore queue (`<prefix>-restore-work`): the next piece of a restore that outlasted an
// invocation (restore/restore-continuation.ts), read by the restore function. Version 1:
//   { "version": 1, "kind": "restore", "tenant": "acme",        the tenant restored into
//     "command": { "from": "s3://…", "limits": {…},            the restore request's archive,
//                  "identitySecret": "…" },                     limits and secret name (never a key)
//     "continues": { "chain": "…", "trigger": "direct" },
//     "piece": 2 }                                               the piece it runs
// `as` and `force` travel in the chain's checkpoint, not here. Refused as the backup's
// messages are: an unknown version, kind or field waits in the DLQ for a newer consumer.

/** The next piece of a restore in pieces. */
export interface RestoreWorkMessage {
  readonly version: typeof WORK_MESSAGE_VERSION;
  readonly kind: 'restore';
  readonly tenant: string;
  /** The restore request's archive, limits and identity secret's name, as the restore function reads a request (protocol.ts). */
  readonly command: { readonly from: string; readonly limits?: Readonly<Record<string, number>>; readonly identitySecret?: string };
  readonly continues: Continues;
  /**
   * The piece this message runs (2 and on): a delivery that finds its chain's checkpoint past
   * it is a duplicate of a piece already run, answered as done (restore.ts). Every message
   * carries it: one without would run whatever the checkpoint says, a second copy of the chain.
   */
  readonly piece: number;
}

export function encodeRestoreWorkMessage(message: RestoreWorkMessage): string {
  return JSON.stringify(message);
}

/** The restore queue's message in an SQS record's body, validated (its command by `parseCommand`: the restore function's request parser). */
export function parseRestoreWorkMessage<C>(body: string, parseCommand: (command: unknown) => C): { readonly message: RestoreWorkMessage; readonly command: C } {
  const what = 'restore queue message';
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new UnreadableWorkMessageError(`${what}: not JSON`, undefined);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UnreadableWorkMessageError(`${what}: expected a JSON object`, undefined);
  const record = value as Record<string, unknown>;
  if (record.version !== WORK_MESSAGE_VERSION) {
    throw new NewerWorkMessageError(`${what}: version ${JSON.stringify(record.version)} is not one this restore function knows (${WORK_MESSAGE_VERSION}): deploy the version that wrote it, then redrive the restore DLQ`);
  }
  if (record.kind !== 'restore') throw new NewerWorkMessageError(`${what}: kind ${JSON.stringify(record.kind)} is not one this restore function knows ("restore")`);
  unknownKeys(record, ['version', 'kind', 'tenant', 'command', 'continues', 'piece'], what);
  const tenant = record.tenant;
  if (typeof tenant !== 'string' || !isValidTenantName(tenant)) throw new UnreadableWorkMessageError(`${what}: "tenant" must be a tenant name`, undefined);
  const unreadable = (why: string) => new UnreadableWorkMessageError(`${what}: ${why}`, tenant);
  const command = record.command;
  if (typeof command !== 'object' || command === null || Array.isArray(command)) throw unreadable('"command" must be an object');
  unknownKeys(command as Record<string, unknown>, ['from', 'limits', 'identitySecret'], `${what} command`);
  let parsed: C;
  try {
    parsed = parseCommand(command);
  } catch (error) {
    throw unreadable(`"command": ${(error as Error).message}`);
  }
  let continues: Continues;
  try {
    continues = parseContinues(record.continues, what);
  } catch (error) {
    throw unreadable((error as Error).message.replace(`${what}: `, ''));
  }
  if (continues.trigger !== 'direct') throw unreadable('"continues.trigger" must be "direct" (a restore is asked for directly)');
  const piece = record.piece;
  if (!(Number.isSafeInteger(piece) && (piece as number) >= 2)) throw unreadable('"piece" must be a whole number from 2');
  return {
    message: { version: WORK_MESSAGE_VERSION, kind: 'restore', tenant, command: command as RestoreWorkMessage['command'], continues, piece: piece as number },
    command: parsed,
  };
}
