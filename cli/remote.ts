// Remote mode's TenantOperations: the same BackupCommand / RestoreCommand the CLI would run
// in-process, sent to the gateway's functions with Lambda Invoke (RequestResponse), and
// their answers turned back into the same results and typed errors, so output and exit
// codes do not depend on where the work ran. See shared/control-plane/protocol.ts for the payloads.
//
// The storage flags keep their meaning except two: `--aws-profile` and `--region` choose
// how the CLI calls the gateway (the functions use their execution role in their own region),
// and `--pipe` is refused (no shell in Lambda). With an `--endpoint`, the region its requests
// are signed for is sent as local mode resolves it (`--region`, else the profile's region). Progress is not
// shown: the answer comes when the operation is done.

import type { InvokeCommandOutput } from '@aws-sdk/client-lambda';

import type { BackupResult } from '../shared/backup/backup.js';
import type { BackupPlan } from '../shared/backup/backup-plan.js';
import { MAX_LISTED_BACKUPS, mergeBackupsPages, tooManyBackups, type BackupsListing } from '../shared/catalog/backups.js';
import type { PruneResult } from '../shared/catalog/prune.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import type { VerifyResult } from '../shared/restore/verify.js';
import { AbortedError, AgeBadIdentityError, InvalidRequestError, OpenClawError, RemoteError, UsageError } from '../shared/errors.js';
import type { BackupCommand, IdentitySources, PruneCommand, QueuedBackupAll, RestoreCommand, StorageFlags, TenantOperations } from '../shared/operations.js';
import { FANOUT_PAYLOAD_SOURCE, FANOUT_PAYLOAD_VERSION, assertAllTenantsDestination, type FanOutPayload } from '../shared/schedule/cron-command.js';
import type { RestoreResult } from '../shared/restore/restore.js';
import { backupRecipients } from '../shared/archive/encrypted-archive.js';
import { assertWrittenAsPath } from '../shared/storage/open-location.js';
import { isS3Url } from '../shared/storage/s3-url.js';
import { s3ObjectSettings } from '../shared/storage/s3-object-settings.js';
import type { RecoveredTenant, SkippedTenant, TenantSummary } from '../shared/tenant/tenants.js';
import { byName } from '../shared/tenant/names.js';
import { recoveredInAnswers } from '../shared/control-plane/list-pages.js';
import { pipeRefusal } from '../shared/control-plane/remote-policy.js';
import { errorFromBody, isAnswerOf, isFailureResponse, isRecord, restoreSuspendedOf, SECRET_KEY_AS_SECRET_NAME, suspendedOf, type ListRequest } from '../shared/control-plane/protocol.js';
import { looksLikeSecretKey } from '../shared/age/keys.js';
import { awsErrorName, translateAwsError } from '../shared/control-plane/aws-errors.js';
import { olderGatewayError } from '../shared/control-plane/gateway-fields.js';
import { functionName, TENANTS_MOUNT_PATH, type ControlPlane, type FunctionRole } from '../shared/control-plane/deployment.js';
import { endpointSigningRegion, invokeClient } from './aws.js';

export function remoteTenantsDirLabel(plane: ControlPlane): string {
  return `${plane.stack}:${TENANTS_MOUNT_PATH}`;
}

export function remoteOperations(plane: ControlPlane): TenantOperations {
  // The listing `tenants list` reads its tenants from: its skipped ones come with it.
  let listing: Promise<Listing> | undefined;
  const listed = (names: boolean) => (listing = listAll(plane, names));
  return {
    async backup(command, hooks = {}) {
      assertRemoteLocation(command.to, '--to', command.storage);
      const payload: BackupCommand = {
        tenant: command.tenant,
        to: command.to,
        ...(command.overwrite !== undefined && { overwrite: command.overwrite }),
        // Sent only when set: a gateway older than the flag refuses it as an unknown field.
        ...(command.sqliteRawFallback === true && { sqliteRawFallback: true }),
        ...(await forwarded(plane, command.storage)),
        // Public keys only.
        ...encryptToOf(command),
      };
      const answer = await invoke(plane, 'backup', payload, hooks.signal);
      // A backup that outlasts its invocation answers BackupSuspended (with a failure beside it for older CLIs): it continues on the gateway.
      const suspended = suspendedOf(answer);
      if (suspended !== undefined) return suspended;
      if (!isAnswerOf('backup', answer)) throw unexpectedAnswer(plane, 'backup');
      return answer as unknown as BackupResult;
    },
    async backupAll(command, hooks = {}) {
      assertRemoteLocation(command.to, '--to', command.storage);
      const { endpoint, accessKey, secretKey } = command.storage ?? {};
      if (endpoint !== undefined || accessKey !== undefined || secretKey !== undefined) {
        throw new UsageError(
          'tenants backup --all on a gateway writes every archive to its own bucket with its functions\' role: drop --endpoint, --access-key and --secret-key',
          'REMOTE_UNSUPPORTED',
        );
      }
      const { sse, sseKmsKeyId, storageClass } = command.storage ?? {};
      const storage = { ...(sse !== undefined && { sse }), ...(sseKmsKeyId !== undefined && { sseKmsKeyId }), ...(storageClass !== undefined && { storageClass }) };
      if (command.sqliteRawFallback === true) {
        throw new UsageError('--sqlite-raw-fallback goes with --all on this machine: a gateway\'s queued backups take none (give it to each tenant\'s backup by name)', 'REMOTE_UNSUPPORTED');
      }
      if (command.skipExisting === true) {
        throw new UsageError('--skip-existing is for --all on this machine: a gateway queues a backup of every tenant (back up those missing by name)', 'REMOTE_UNSUPPORTED');
      }
      if (command.jobs !== undefined) throw new UsageError('--jobs is for --all on this machine: a gateway runs its queued backups a bounded number at a time of its own', 'REMOTE_UNSUPPORTED');
      assertAllTenantsDestination(command.to);
      // Checked here, with the line the CLI would print locally, before the gateway is called.
      const encryptTo = backupRecipients(command.encryptTo ?? []).map((recipient) => recipient.text);
      const payload: FanOutPayload = {
        source: FANOUT_PAYLOAD_SOURCE,
        version: FANOUT_PAYLOAD_VERSION,
        to: command.to,
        ...(command.overwrite === true && { overwrite: true }),
        // Public keys only; sent only when set: a gateway older than the field refuses it as unknown.
        ...(encryptTo.length > 0 && { encryptTo }),
        // Sent only when given: a gateway older than the field refuses it as unknown.
        ...(Object.keys(storage).length > 0 && { storage }),
      };
      const answer = await invoke(plane, 'fanout', payload, hooks.signal);
      if (!isRecord(answer) || answer.operation !== 'backup-all' || typeof answer.queued !== 'number' || !Array.isArray(answer.failed)) throw unexpectedAnswer(plane, 'fanout');
      return answer as unknown as QueuedBackupAll;
    },
    async restore(command, hooks = {}) {
      assertRemoteLocation(command.from, '--from', command.storage);
      refuseRemoteOwner(command);
      refuseIdentityFiles(plane, command);
      const answer = await invoke(plane, 'restore', await restorePayload(plane, command), hooks.signal);
      // A restore that outlasts its invocation answers RestoreSuspended (with a failure beside it for older CLIs): it continues on the gateway.
      const suspended = restoreSuspendedOf(answer);
      if (suspended !== undefined) return suspended;
      if (!isAnswerOf('restore', answer)) throw unexpectedAnswer(plane, 'restore');
      return answer as unknown as RestoreResult;
    },
    async planBackup(command, hooks = {}) {
      assertRemoteLocation(command.to, '--to', command.storage);
      const payload = {
        tenant: command.tenant,
        to: command.to,
        ...(command.overwrite !== undefined && { overwrite: command.overwrite }),
        ...(await forwarded(plane, command.storage)),
        ...encryptToOf(command),
        dryRun: true,
      };
      const answer = await invoke(plane, 'backup', payload, hooks.signal);
      if (!isAnswerOf('backup-plan', answer)) throw unexpectedAnswer(plane, 'backup');
      return answer as unknown as BackupPlan;
    },
    async planRestore(command, hooks = {}) {
      assertRemoteLocation(command.from, '--from', command.storage);
      refuseRemoteOwner(command);
      refuseIdentityFiles(plane, command);
      const answer = await invoke(plane, 'restore', { ...(await restorePayload(plane, command)), dryRun: true }, hooks.signal);
      if (!isAnswerOf('restore-plan', answer)) throw unexpectedAnswer(plane, 'restore');
      return answer as unknown as RestorePlan;
    },
    async verify(command, hooks = {}) {
      assertRemoteLocation(command.from, '--from', command.storage);
      refuseIdentityFiles(plane, command);
      const payload = {
        operation: 'verify',
        from: command.from,
        ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
        ...(command.limits !== undefined && Object.keys(command.limits).length > 0 && { limits: command.limits }),
        ...(command.record !== undefined && { record: command.record }),
        ...(await forwarded(plane, command.storage)),
      };
      const answer = await invoke(plane, 'restore', payload, hooks.signal);
      if (!isAnswerOf('verify', answer)) throw unexpectedAnswer(plane, 'restore');
      return answer as unknown as VerifyResult;
    },
    async listBackups(command, hooks = {}) {
      assertRemoteLocation(command.in, '--in', command.storage);
      return listAllBackups(plane, { operation: 'backups', tenant: command.tenant, in: command.in, ...(await forwarded(plane, command.storage)) }, hooks.signal);
    },
    async prune(command, hooks = {}) {
      assertRemoteLocation(command.in, '--in', command.storage);
      const { storage } = await forwarded(plane, command.storage);
      const payload: PruneCommand = {
        tenant: command.tenant,
        in: command.in,
        keep: command.keep,
        ...(command.dryRun !== undefined && { dryRun: command.dryRun }),
        ...(command.storage?.deleteIfMatch === true ? { storage: { ...storage, deleteIfMatch: true } } : storage !== undefined && { storage }),
      };
      // `bounded`: an answer over Lambda's 6 MB (~30,000 decisions) comes with its lists cut
      // instead of failing after the prune ran. A gateway older than that refuses the field
      // before pruning anything: it is asked again without.
      let answer: unknown;
      try {
        answer = await invoke(plane, 'prune', { ...payload, bounded: true }, hooks.signal);
      } catch (error) {
        if (!(error instanceof InvalidRequestError && /unknown field "bounded"/.test(error.message))) throw error;
        answer = await invoke(plane, 'prune', payload, hooks.signal);
      }
      if (!isAnswerOf('prune', answer)) throw unexpectedAnswer(plane, 'prune');
      // A gateway deployed before `skipped` or `notes` existed never skips and has nothing to note.
      return { skipped: [], notes: [], ...answer } as unknown as PruneResult;
    },
    async recover() {
      throw new UsageError(
        'tenants recover runs where the tenant base dir is mounted, not through the gateway\'s functions: ' +
          'run it on a machine that mounts the EFS volume, with --tenants-dir',
        'REMOTE_UNSUPPORTED',
      );
    },
    async listNames() {
      const { tenants, recovered } = await listed(true);
      if (!tenants.every((name) => typeof name === 'string')) throw unexpectedAnswer(plane, 'list');
      return { tenants: tenants as string[], recovered: recoveredOf(plane, recovered) };
    },
    async listSkipped() {
      // Those of the listing asked for with it (tenants list), else of a listing of names.
      const { skipped: named = [], strays = [], skippedOmitted } = await (listing ?? listed(true));
      listing = undefined;
      // A gateway of an older version sends no `skipped` (nor `strays`, `skippedOmitted`); a page of this one none when there are none to name.
      const entries = (value: unknown) => Array.isArray(value) && value.every((entry) => isRecord(entry) && typeof entry.name === 'string' && typeof entry.reason === 'string');
      if (!entries(named) || !entries(strays)) throw unexpectedAnswer(plane, 'list');
      const skipped = [...(named as SkippedTenant[]), ...(strays as SkippedTenant[]).map((entry) => ({ ...entry, invalidName: true as const }))].sort((a, b) => byName(a.name, b.name));
      // A page holds as many as fit a quarter of its answer, and counts the others.
      if (skippedOmitted === undefined) return skipped;
      if (!Number.isSafeInteger(skippedOmitted) || (skippedOmitted as number) < 0) throw unexpectedAnswer(plane, 'list');
      return Object.assign(skipped, { omitted: skippedOmitted as number });
    },
    async listSummaries() {
      const { tenants, recovered } = await listed(false);
      const summaries = tenants.map((tenant) => {
        if (!isRecord(tenant) || typeof tenant.name !== 'string') throw unexpectedAnswer(plane, 'list');
        // A gateway of an older version sends no state: its tenants are all settled.
        const state = tenant.state ?? 'ok';
        if (state === 'ok' && typeof tenant.lastModified !== 'string') throw unexpectedAnswer(plane, 'list');
        return {
          ...(tenant as unknown as TenantSummary),
          state,
          ...(typeof tenant.lastModified === 'string' && { lastModified: new Date(tenant.lastModified) }),
        } as TenantSummary;
      });
      return { tenants: summaries, recovered: recoveredOf(plane, recovered) };
    },
  };
}

/**
 * The interrupted restores the list function's sweeps settled (each page's `recovered`), one
 * per tenant, sorted (list-pages.ts recoveredInAnswers): none from a gateway older than the field.
 */
function recoveredOf(plane: ControlPlane, pages: readonly unknown[]): RecoveredTenant[] {
  const recovered = recoveredInAnswers(pages);
  if (recovered === undefined) throw unexpectedAnswer(plane, 'list');
  return recovered;
}

/** A backup of a listing, with what `tenants backups` shows of every one. */
function isShownBackupEntry(entry: unknown): boolean {
  return isRecord(entry) && typeof entry.location === 'string' && typeof entry.bytes === 'number' && typeof entry.modifiedAt === 'string';
}

async function restorePayload(plane: ControlPlane, command: RestoreCommand): Promise<RestoreCommand> {
  return {
    from: command.from,
    ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
    ...(command.as !== undefined && { as: command.as }),
    ...(command.force !== undefined && { force: command.force }),
    ...(command.limits !== undefined && Object.keys(command.limits).length > 0 && { limits: command.limits }),
    ...(await forwarded(plane, command.storage)),
  };
}

/** `--identity` reads a secret key on this machine; in remote mode the gateway reads one from Secrets Manager. */
function refuseIdentityFiles(plane: ControlPlane, command: IdentitySources): void {
  if (command.identitySecret !== undefined && looksLikeSecretKey(command.identitySecret)) throw new AgeBadIdentityError(SECRET_KEY_AS_SECRET_NAME);
  if (command.identityFiles === undefined || command.identityFiles.length === 0) return;
  throw new UsageError(
    '--identity reads a secret key on this machine, and identities never travel to the gateway: store it in AWS Secrets Manager ' +
      `under ${plane.stack}/ (e.g. ${plane.stack}/backup-key) and give --identity-secret NAME`,
    'REMOTE_UNSUPPORTED',
  );
}

/** The recipients (public keys) a backup is encrypted to, sent only when there are any. */
function encryptToOf(command: BackupCommand): { encryptTo?: readonly string[] } {
  return command.encryptTo !== undefined && command.encryptTo.length > 0 ? { encryptTo: command.encryptTo } : {};
}

function refuseRemoteOwner(command: RestoreCommand): void {
  if (command.owner === undefined) return;
  throw new UsageError(
    '--owner is a local-mode setting: on the gateway the access point\'s POSIX user owns everything the restore function writes (see doctor)',
    'REMOTE_UNSUPPORTED',
  );
}

/** What can be refused here without a round trip; the function checks everything again. */
function assertRemoteLocation(location: string, flag: string, storage: Partial<StorageFlags> | undefined): void {
  if (storage?.pipe !== undefined) throw new UsageError(pipeRefusal(flag === '--to' ? 'backup' : 'restore'), 'REMOTE_UNSUPPORTED');
  if (storage?.stallTimeoutFromFlag === true) {
    throw new UsageError(
      '--stall-timeout sets the stall time of this machine\'s S3 transfers: in remote mode the gateway\'s functions transfer the archive, with their own (drop it)',
      'REMOTE_UNSUPPORTED',
    );
  }
  // --sse, --sse-kms-key-id, --storage-class (a backup's only): the line local mode prints, before the gateway is called.
  s3ObjectSettings(storage ?? {});
  if (!isS3Url(location)) {
    // Named as local mode names it first: ' s3://b/k', S3://b/k, s3:/b/k, an S3 object's https:// address.
    assertWrittenAsPath(location, flag === '--in' ? 'store' : 'archive');
    throw new UsageError(
      `in remote mode archives are stored in S3: ${flag} must be ${flag === '--in' ? 's3://bucket/prefix/' : 's3://bucket/key'} (the gateway's functions cannot reach a path on this machine)`,
      'REMOTE_UNSUPPORTED',
    );
  }
}

/**
 * The storage flags the function uses: the endpoint, its keys, and the region requests to it
 * are signed for. Profile and region are otherwise the CLI's own (they choose the gateway).
 */
async function forwarded(plane: ControlPlane, storage: StorageFlags | undefined): Promise<{ storage?: StorageFlags }> {
  const { endpoint, accessKey, secretKey, sse, sseKmsKeyId, storageClass } = storage ?? {};
  // Signed for the region local mode signs the same command for (a store with a region of its
  // own refuses any other; the function has no profile to read it from, and would sign us-east-1).
  const region = endpoint === undefined ? undefined : await endpointSigningRegion(plane, storage?.region);
  const flags = {
    ...(endpoint !== undefined && { endpoint }),
    ...(region !== undefined && { region }),
    ...(accessKey !== undefined && { accessKey }),
    ...(secretKey !== undefined && { secretKey }),
    // How the backup function stores the archive's object; sent only when given: a gateway older than the flags refuses them as unknown.
    ...(sse !== undefined && { sse }),
    ...(sseKmsKeyId !== undefined && { sseKmsKeyId }),
    ...(storageClass !== undefined && { storageClass }),
  };
  return Object.keys(flags).length === 0 ? {} : { storage: flags };
}

/** What the list function answered: every tenant (names or summaries), and the skipped ones as sent. */
interface Listing {
  readonly tenants: unknown[];
  readonly skipped: unknown;
  /** The directories whose names are no tenant names, apart from `skipped` (shared/control-plane/list-pages.ts skippedFields); none from a gateway older than them. */
  readonly strays?: unknown;
  /** The skipped tenants the last page counted but did not name. */
  readonly skippedOmitted?: unknown;
  /** Each page's `recovered` (list-pages.ts), as sent: what its listing's sweep settled first. */
  readonly recovered: readonly unknown[];
}

/**
 * Every tenant, from the list function's pages (ListRequest.pages: as many as fit one Lambda
 * answer each, the next asked after the last name of the one before), so a gateway of any
 * number of tenants is listed whole. Pages are read one after another, not as one snapshot: a
 * tenant created or removed meanwhile may be in or out, as with a local listing a moment
 * earlier or later. A gateway older than pages is asked for the whole list at once, as before.
 */
async function listAll(plane: ControlPlane, names: boolean): Promise<Listing> {
  const pages = await pagedAnswers(plane, 'list', { names } satisfies ListRequest, (answer) => isRecord(answer) && Array.isArray(answer.tenants));
  if (pages === undefined) return listWhole(plane, names);
  const last = pages.at(-1)!;
  return { tenants: pages.flatMap((page) => page.tenants as unknown[]), skipped: last.skipped, strays: last.strays, skippedOmitted: last.skippedOmitted, recovered: pages.map((page) => page.recovered) };
}

/** The list as a gateway older than pages gives it: whole, in one answer (at most 6 MB: ~50,000 summaries). */
async function listWhole(plane: ControlPlane, names: boolean): Promise<Listing> {
  let answer: unknown;
  try {
    answer = await invoke(plane, 'list', names ? { names: true } : {});
  } catch (error) {
    if (error instanceof RemoteError && error.code === 'REMOTE_FUNCTION_ERROR' && /larger than the 6 MB/.test(error.message)) {
      throw new RemoteError(
        'REMOTE_FUNCTION_ERROR',
        `${error.message}; the gateway was deployed by an older version, whose ${functionName(plane.stack, 'list')} cannot answer in pages: deploy this version's to list every tenant through it`,
      );
    }
    throw error;
  }
  if (!isRecord(answer) || !Array.isArray(answer.tenants)) throw unexpectedAnswer(plane, 'list');
  return { tenants: answer.tenants, skipped: answer.skipped, strays: answer.strays, recovered: [] };
}

/**
 * Every backup of a `tenants backups`, from the restore function's pages (`pages: true`: the
 * objects sorted after the last one of the page before, as many as fit one Lambda answer),
 * made one listing ordered as a local one is (mergeBackupsPages): so a store is listed whole,
 * with its counts, up to the MAX_LISTED_BACKUPS of the tenant a listing keeps (counted here: each page
 * lists only its own objects, from after the one before ended). Pages are read one after another, not as one
 * snapshot: an archive stored or removed meanwhile may be in or out, as with a listing a
 * moment earlier or later. A gateway older than pages answers in one, with the newest that
 * fit and the number of the others (`omitted`), as before.
 */
async function listAllBackups(plane: ControlPlane, request: Record<string, unknown>, signal: AbortSignal | undefined): Promise<BackupsListing> {
  // A page lists only its own objects, so no page sees how many backups the prefix holds:
  // counted here, and bounded as a listing in one piece is (the others' objects are not held).
  let backups = 0;
  const counted = (page: Record<string, unknown>) => {
    backups += (page.backups as unknown[]).length;
    if (backups > MAX_LISTED_BACKUPS) throw tooManyBackups(String(page.location), String(page.tenant));
  };
  const pages = await pagedAnswers(plane, 'restore', request, isBackupsAnswer, signal, counted);
  if (pages !== undefined) return mergeBackupsPages(pages as unknown as BackupsListing[]);
  const answer = await invoke(plane, 'restore', request, signal);
  if (!isBackupsAnswer(answer)) throw unexpectedAnswer(plane, 'restore');
  return answer as unknown as BackupsListing;
}

/**
 * The answers of a request in pages (`pages: true`), each asked for after the `next` of the
 * one before, until one has none; undefined when a gateway older than pages refused the field
 * (on the first, before doing anything), to be asked the old way.
 */
async function pagedAnswers(
  plane: ControlPlane,
  role: InvokedRole,
  request: object,
  isPage: (answer: unknown) => boolean,
  signal?: AbortSignal,
  onPage?: (page: Record<string, unknown>) => void,
): Promise<Record<string, unknown>[] | undefined> {
  const pages: Record<string, unknown>[] = [];
  let after: string | undefined;
  for (;;) {
    let answer: unknown;
    try {
      answer = await invoke(plane, role, { ...request, pages: true, ...(after !== undefined && { after }) }, signal);
    } catch (error) {
      if (after === undefined && error instanceof InvalidRequestError && /unknown field "pages"/.test(error.message)) return undefined;
      throw error;
    }
    if (!isRecord(answer) || !isPage(answer)) throw unexpectedAnswer(plane, role);
    onPage?.(answer);
    pages.push(answer);
    if (answer.next === undefined) return pages;
    // Each page goes on after the one before: a `next` that does not would never end.
    if (typeof answer.next !== 'string' || (after !== undefined && !sortsAfter(answer.next, after))) throw unexpectedAnswer(plane, role);
    after = answer.next;
  }
}

/**
 * Whether a page's `next` goes on from the `after` it was asked for: in the order of JavaScript
 * strings (a gateway that sorted the objects it listed whole) or of their UTF-8 bytes (S3's
 * own, which a gateway listing from where the page before stopped follows); the two differ only
 * between a character beyond U+FFFF and one from U+E000 to U+FFFF.
 */
function sortsAfter(next: string, after: string): boolean {
  return next > after || Buffer.compare(Buffer.from(next), Buffer.from(after)) > 0;
}

function isBackupsAnswer(answer: unknown): answer is Record<string, unknown> {
  return isAnswerOf('backups', answer) && (answer.backups as unknown[]).every(isShownBackupEntry);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Invokes `<stack>-<role>` and returns its JSON answer; failures become typed errors. */
async function invoke(plane: ControlPlane, role: InvokedRole, payload: object, signal?: AbortSignal): Promise<unknown> {
  const name = functionName(plane.stack, role);
  const [client, { InvokeCommand }] = await Promise.all([invokeClient(plane), import('@aws-sdk/client-lambda')]);
  let output: InvokeCommandOutput;
  try {
    output = await sendRetryingThrottled(() =>
      client.send(
        new InvokeCommand({ FunctionName: name, InvocationType: 'RequestResponse', Payload: encoder.encode(JSON.stringify(payload)) }),
        { abortSignal: signal },
      ),
      signal,
    );
  } catch (error) {
    if (error instanceof AbortedError) throw error;
    if (signal?.aborted || (error as Error | undefined)?.name === 'AbortError') {
      throw new AbortedError(
        changesNothing(role, payload)
          ? 'interrupted'
          : role === 'fanout'
          ? `interrupted while waiting for the gateway: the fan-out may still queue the backups there (see the logs of ${name})`
          : `interrupted while waiting for the gateway: the ${role} may still finish there (see its completion event, or the logs of ${name})`,
      );
    }
    const translated = translateAwsError(error, plane, `invoking ${name}`);
    const needs = ADDED_LATER[role];
    if (needs !== undefined && translated.code === 'STACK_NOT_FOUND') {
      throw new UsageError(`${translated.message}; if it is, it was deployed by an older version, without ${name}: ${needs} needs the gateway of this version`, 'STACK_NOT_FOUND');
    }
    throw translated;
  }

  let answer: unknown;
  try {
    answer = output.Payload === undefined || output.Payload.length === 0 ? undefined : JSON.parse(decoder.decode(output.Payload));
  } catch {
    throw unexpectedAnswer(plane, role);
  }
  if (output.FunctionError !== undefined) {
    // The function crashed or timed out instead of answering: Lambda's own error payload.
    const { errorType, errorMessage } = isRecord(answer) ? answer : {};
    const detail = typeof errorMessage === 'string' ? errorMessage.split('\n')[0] : output.FunctionError;
    if (errorType === 'Function.ResponseSizeTooLarge') {
      throw new RemoteError(
        'REMOTE_FUNCTION_ERROR',
        `${name} could not answer: its answer is larger than the 6 MB a Lambda response may hold; ` +
          (changesNothing(role, payload)
            ? 'run the command without --stack, on a host that mounts the tenant volume (tenants list) or reaches the bucket'
            : `the ${role} itself may have finished: see its completion event, or the logs of ${name}`),
      );
    }
    if (typeof detail === 'string' && /timed out/i.test(detail)) {
      throw new RemoteError('REMOTE_TIMEOUT', `${name} timed out (${detail}): ${afterTimeout(role, name, payload)}`);
    }
    // Its process died mid-run (killed at its memory size, or exited): what it left is what a timeout leaves.
    if (errorType === 'Runtime.OutOfMemory' || errorType === 'Runtime.ExitError') {
      const why = errorType === 'Runtime.OutOfMemory' ? 'out of memory' : 'its process exited';
      throw new RemoteError('REMOTE_FUNCTION_ERROR', `${name} was killed before it answered (${why}: ${errorType}: ${detail}): ${afterTimeout(role, name, payload)}`);
    }
    throw new RemoteError('REMOTE_FUNCTION_ERROR', `${name} failed: ${typeof errorType === 'string' ? `${errorType}: ` : ''}${detail}`);
  }
  // A continuing backup's answer carries a failure for older CLIs (protocol.ts continuingAnswer): it is no failure here.
  if (role === 'backup' && suspendedOf(answer) !== undefined) return answer;
  if (role === 'restore' && restoreSuspendedOf(answer) !== undefined) return answer;
  // A field this CLI sends that an older gateway does not know: refused before anything ran, with the fix.
  if (isFailureResponse(answer)) throw olderGatewayError(name, errorFromBody(answer.error));
  return answer;
}

type InvokedRole = FunctionRole | 'fanout';

/** The functions a gateway deployed by an older version lacks, and the command that needs each. */
const ADDED_LATER: Partial<Record<InvokedRole, string>> = { prune: 'tenants prune', fanout: 'tenants backup --all' };

/** A listing, verify or dry run: nothing on the gateway changes, whatever becomes of the invocation. */
function changesNothing(role: InvokedRole, payload: object): boolean {
  return role === 'list' || (isRecord(payload) && (payload.dryRun === true || payload.operation !== undefined));
}

/**
 * The waits before sending again an invocation Lambda throttled (TooManyRequestsException: the
 * function's reserved concurrency, or the account's, in use). A throttled invocation did not
 * run, so it is sent again, unlike one whose answer was lost (invokeClient makes one attempt).
 */
const THROTTLED_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000];

async function sendRetryingThrottled<T>(send: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const delay = THROTTLED_RETRY_DELAYS_MS[attempt];
      if (awsErrorName(error) !== 'TooManyRequestsException' || delay === undefined || signal?.aborted) throw error;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
      });
      // Interrupted while waiting: the throttled invocation never ran.
      if (signal?.aborted) throw new AbortedError('interrupted');
    }
  }
}

/**
 * What an invocation Lambda stopped at its timeout (or killed) left behind, and what to do about it
 * (docs/crash-safety.md): the function had no chance to say so itself.
 */
function afterTimeout(role: InvokedRole, name: string, payload: object): string {
  if (changesNothing(role, payload)) return 'nothing was changed; try again';
  switch (role) {
    case 'list':
      return 'nothing was changed; try again';
    case 'restore':
      return (
        'the restore was cut off; the next command on the tenant settles what it left (once its lock is a minute old), ' +
        'keeping the previous tenant unless the new one was already verified: check with tenants list, ' +
        'and restore an archive this large with the CLI in local mode on a host that mounts the tenant volume'
      );
    case 'backup':
      return 'the backup was cut off before its archive was complete, so none was stored under its name; try again';
    case 'prune':
      return 'the prune was cut off: the backups it removed are gone and the others are still there; run it again';
    case 'fanout':
      return `some backups may already be queued: see the logs of ${name} before trying again`;
  }
}

function unexpectedAnswer(plane: ControlPlane, role: InvokedRole): OpenClawError {
  return new RemoteError('REMOTE_PROTOCOL', `unexpected answer from ${functionName(plane.stack, role)}: are the CLI and the gateway the same version?`,
  );
}
