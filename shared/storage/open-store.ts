// The factory of archive stores (archive-store.ts), as open-location.ts is of single
// archives: `--in s3://bucket/prefix/` or a local directory, with the same storage flags,
// each validated before any client or credential is touched; the AWS SDK is imported only
// for S3. `deleteIfMatch` is the operator's word that an S3-compatible store honours
// `If-Match` on DeleteObject (AWS S3 does and is trusted without it): removals are then
// conditional on the listed ETag instead of checked by a HEAD just before (s3-store.ts).

import { UsageError } from '../errors.js';
import type { ArchiveStore } from './archive-store.js';
import { LocalArchiveStore } from './local-store.js';
import { s3ClientFor, validateLocationOptions, type LocationOptions } from './open-location.js';
import { isS3Url, parseS3Prefix } from './s3-url.js';


export type StoreOptions = Omit<LocationOptions, 'pipe' | 'expectedBytes'> & {
  /** `--delete-if-match`: the store refuses a DeleteObject whose If-Match names another ETag. @default - only on AWS S3 */
  readonly deleteIfMatch?: boolean;
};

export async function openStore(spec: string, options: StoreOptions = {}): Promise<ArchiveStore> {
  // Refuses a URL of another scheme, a mistyped one and leading whitespace too.
  validateLocationOptions(spec, options, 'store');
  if (!isS3Url(spec)) {
    if (options.deleteIfMatch === true) throw new UsageError('--delete-if-match applies only to s3:// locations');
    return new LocalArchiveStore(spec);
  }
  const { bucket, prefix } = parseS3Prefix(spec, options.access);
  const [{ client, endpoint }, { S3ArchiveStore }] = await Promise.all([s3ClientFor(options), import('./s3-store.js')]);
  return new S3ArchiveStore({
    client,
    bucket,
    prefix,
    ...(endpoint !== undefined && { endpoint: endpoint.url, endpointSource: endpoint.source }),
    secrets: [options.secretKey],
    ...(options.deleteIfMatch === true && { conditionalWrites: true }),
  });
}
