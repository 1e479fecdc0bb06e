// How a backup's S3 object is stored: server-side encryption (`--sse`, `--sse-kms-key-id`) and
// storage class (`--storage-class`), named as `aws s3 cp` names them. Every request that
// creates the object carries them (PutObject, CreateMultipartUpload: s3-upload.ts); the parts
// of a multipart upload inherit them. Pure: checked before any client exists, as usage errors
// naming the flag.
//
// Classes whose objects cannot be read until they are restored (GLACIER, DEEP_ARCHIVE) are
// refused: a backup stored there could be neither verified nor restored when it is needed
// (hours to days of `restore-object` first), and prune could never count it as verified. A
// bucket lifecycle rule that moves older backups there is the way to have them (the listing
// and prune handle archived objects; a restore or verify of one fails saying to restore it).

import { UsageError } from '../errors.js';

export const SSE_ALGORITHMS = ['AES256', 'aws:kms', 'aws:kms:dsse'] as const;
export type SseAlgorithm = (typeof SSE_ALGORITHMS)[number];

/** Storage classes whose objects are read at once (EXPRESS_ONEZONE: directory buckets only). */
export const STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'REDUCED_REDUNDANCY', 'EXPRESS_ONEZONE'] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Classes a backup is refused in (module comment), and how long a read of one waits. */
const ARCHIVE_CLASSES: Readonly<Record<string, string>> = {
  GLACIER: 'minutes to 12 hours',
  DEEP_ARCHIVE: 'up to 48 hours',
};

/** The user's flags, as given. */
export interface S3ObjectFlags {
  /** `--sse`: AES256, aws:kms or aws:kms:dsse. */
  readonly sse?: string;
  /** `--sse-kms-key-id`: the KMS key (id, ARN or alias) of aws:kms. */
  readonly sseKmsKeyId?: string;
  /** `--storage-class` */
  readonly storageClass?: string;
}

/** The headers the object is created with (the SDK's field names); empty when no flag is given. */
export interface S3ObjectSettings {
  readonly ServerSideEncryption?: SseAlgorithm;
  readonly SSEKMSKeyId?: string;
  readonly StorageClass?: StorageClass;
}

/** The flags of S3ObjectFlags, for messages. */
export const S3_OBJECT_FLAGS = [
  ['sse', '--sse'],
  ['sseKmsKeyId', '--sse-kms-key-id'],
  ['storageClass', '--storage-class'],
] as const;

/** A KMS key id, key ARN, alias name or alias ARN: no spaces or controls, as KMS allows at most 2048 characters. */
const KMS_KEY_PATTERN = /^[A-Za-z0-9:/_.+=@-]{1,2048}$/;

/** Checks `flags` and answers the headers they ask for; throws UsageError naming the flag. */
export function s3ObjectSettings(flags: S3ObjectFlags): S3ObjectSettings {
  for (const [key, flag] of S3_OBJECT_FLAGS) {
    if (flags[key] !== undefined && flags[key].trim() === '') throw new UsageError(`${flag} needs a value`);
  }
  const sse = flags.sse === undefined ? undefined : SSE_ALGORITHMS.find((name) => name.toLowerCase() === flags.sse!.toLowerCase());
  if (flags.sse !== undefined && sse === undefined) {
    throw new UsageError(`invalid --sse ${JSON.stringify(flags.sse)}: give ${SSE_ALGORITHMS.join(', ')} (SSE-C, customer-provided keys, is not supported)`);
  }
  if (flags.sseKmsKeyId !== undefined) {
    if (sse === undefined) throw new UsageError('--sse-kms-key-id names the key of --sse aws:kms (or aws:kms:dsse): give that too');
    if (sse !== 'aws:kms' && sse !== 'aws:kms:dsse') {
      throw new UsageError(`--sse-kms-key-id names the key of --sse aws:kms (or aws:kms:dsse), and --sse ${sse} takes none (S3's own keys): give --sse aws:kms, or leave --sse-kms-key-id out`);
    }
    if (!KMS_KEY_PATTERN.test(flags.sseKmsKeyId)) throw new UsageError(`invalid --sse-kms-key-id ${JSON.stringify(flags.sseKmsKeyId.slice(0, 80))}: give a KMS key id, key ARN or alias (alias/NAME)`);
  }
  const storageClass = flags.storageClass?.toUpperCase();
  if (storageClass !== undefined && ARCHIVE_CLASSES[storageClass] !== undefined) {
    throw new UsageError(
      `--storage-class ${storageClass} is refused: an object there cannot be read until it is restored (${ARCHIVE_CLASSES[storageClass]}), so the backup could not be verified ` +
        'or restored when needed; store it in STANDARD_IA or GLACIER_IR and let a bucket lifecycle rule move older backups to ' + storageClass,
    );
  }
  if (storageClass !== undefined && !(STORAGE_CLASSES as readonly string[]).includes(storageClass)) {
    throw new UsageError(`invalid --storage-class ${JSON.stringify(flags.storageClass)}: give ${STORAGE_CLASSES.join(', ')}`);
  }
  return {
    ...(sse !== undefined && { ServerSideEncryption: sse }),
    ...(flags.sseKmsKeyId !== undefined && { SSEKMSKeyId: flags.sseKmsKeyId }),
    ...(storageClass !== undefined && { StorageClass: storageClass as StorageClass }),
  };
}

/** What a store's answer to the request that created the object (or a HEAD of it) says of its encryption. */
export interface AppliedEncryption {
  readonly ServerSideEncryption?: string;
  readonly SSEKMSKeyId?: string;
}

/**
 * What of the requested encryption the store's answer did not confirm, or undefined. S3
 * answers PutObject, CompleteMultipartUpload and HEAD with the encryption it applied; a store
 * that ignores the headers (s3rver, some S3-compatible stores) answers none, and the object
 * is then stored as the bucket's defaults say, maybe unencrypted. A key given as an alias
 * cannot be told from the key ARN S3 answers with (that takes kms:DescribeKey): only its
 * presence is checked.
 */
export function unconfirmedEncryption(requested: S3ObjectSettings, applied: AppliedEncryption): string | undefined {
  const asked = requested.ServerSideEncryption;
  if (asked === undefined) return undefined;
  const answered = applied.ServerSideEncryption;
  if (answered === undefined) return `--sse ${asked} (its answer named no server-side encryption)`;
  if (answered.toLowerCase() !== asked.toLowerCase()) return `--sse ${asked} (its answer named ${answered})`;
  const key = requested.SSEKMSKeyId;
  if (key === undefined) return undefined;
  const answeredKey = applied.SSEKMSKeyId;
  if (answeredKey === undefined) return `--sse-kms-key-id ${key} (its answer named no KMS key)`;
  const alias = key.startsWith('alias/') || key.includes(':alias/');
  if (!alias && !isSameKmsKey(key, answeredKey)) return `--sse-kms-key-id ${key} (its answer named the KMS key ${answeredKey})`;
  return undefined;
}

/**
 * Whether a store's answer names the key asked for: AWS answers a key id with its ARN (`…:key/ID`);
 * MinIO takes a key name with or without `arn:aws:kms:` before it and answers it with that prefix
 * (older versions without), so the prefix is no part of the comparison.
 */
function isSameKmsKey(asked: string, answered: string): boolean {
  if (answered === asked || answered.endsWith(`:key/${asked}`)) return true;
  const bare = (id: string) => (id.startsWith(KMS_ARN_PREFIX) ? id.slice(KMS_ARN_PREFIX.length) : id);
  return bare(answered) === bare(asked);
}

const KMS_ARN_PREFIX = 'arn:aws:kms:';

/** A request's storage flags when they are only how its object is stored (S3ObjectFlags, which a work message carries); 'other' when they hold more (an endpoint, keys). */
export function objectFlagsOf(storage: object | undefined): S3ObjectFlags | undefined | 'other' {
  if (storage === undefined) return undefined;
  const objectKeys: readonly string[] = S3_OBJECT_FLAGS.map(([key]) => key);
  const given = Object.entries(storage).filter(([, value]) => value !== undefined);
  if (given.some(([key]) => !objectKeys.includes(key))) return 'other';
  return given.length === 0 ? undefined : (Object.fromEntries(given) as S3ObjectFlags);
}
