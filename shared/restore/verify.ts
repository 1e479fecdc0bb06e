// `tenants verify`: reads a whole archive as a restore would (read-archive.ts: every frame,
// every tar header, every file against the manifest, the same limits) and writes nothing to
// any tenant base dir. What it finds is the restore's own verdict: a damaged archive fails
// with the error the restore would have refused it with (exit 3; a manifest mismatch names
// the first directory that differs), an unreadable one with the storage error (exit 1).
//
// An archive found intact against its manifest gets a verification mark beside it (an S3
// object tag, a hidden file beside a local archive; storage/verified-mark.ts) unless the
// caller says not to: `tenants prune` never removes the newest verified backup. A mark that
// cannot be written (read-only access) is a notice, not a failure: the archive is intact.
//
// One verdict differs from a restore's: an archive of ours whose marker promises a footer
// and whose end holds none fails (`incomplete`, exit 3) though every file checks out, so that
// verify, the listing and prune agree on it (prune counts an incomplete backup by no rule);
// a restore still reads it, its data being whole.

import type { ManifestNote } from '../archive/manifest.js';
import { AgeDamagedError, CorruptArchiveError, describeError } from '../errors.js';
import { groupThousands } from '../format.js';
import type { ArchiveLocation, StoreEndpoint } from '../storage/types.js';
import type { ExtractProgress } from './extract.js';
import { DEFAULT_LIMITS, type ExtractLimits } from './limits.js';
import type { AgeIdentity } from '../age/keys.js';
import type { AgeCliRoute } from '../archive/encrypted-archive.js';
import { archiveCounts, encryptionNotices, ephemeralNotice, readTenantArchive, type ArchiveCounts } from './read-archive.js';

/** What `prepare` hands the extractor in place of a staging directory: nothing is created under it. */
const NOWHERE = '/nonexistent/openclaw-verify';

export interface VerifyRequest {
  readonly location: ArchiveLocation;
  readonly limits?: ExtractLimits;
  /** Record the verification beside the archive. @default true */
  readonly record?: boolean;
  readonly signal?: AbortSignal;
  /** `archiveTotalBytes`: the stored archive's size, when the location told it. */
  readonly onProgress?: (progress: ExtractProgress & { readonly archiveBytes: number; readonly archiveTotalBytes?: number }) => void;
  /** The clock of the mark. */
  readonly now?: () => Date;
  /** Identities to decrypt an age-encrypted archive with (`--identity`); without, such an archive is refused with a hint. */
  readonly identities?: readonly AgeIdentity[];
  /** Where the hints send an age file only the `age` CLI reads (encrypted-archive.ts AgeCliRoute). @default 'pipe' */
  readonly ageCli?: AgeCliRoute;
}

export interface VerifyResult extends ArchiveCounts {
  readonly operation: 'verify';
  readonly location: string;
  /** The S3-compatible endpoint the archive came from, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  /** The tenant the archive holds. */
  readonly tenant: string;
  readonly durationMs: number;
  /** Whether every entry was checked against the archive's manifest (false: a foreign archive without one). */
  readonly verified: boolean;
  readonly manifestSha256?: string;
  readonly backupCreatedAt?: string;
  readonly toolVersion?: string;
  /** Notes the backup recorded. */
  readonly warnings: readonly ManifestNote[];
  /** When the verification was recorded beside the archive; undefined when it was not. */
  readonly recorded?: string;
  readonly notices: readonly string[];
  /** The stored archive was age-encrypted and decrypted (every chunk authenticated). */
  readonly decrypted?: true;
}

export async function verifyArchive(request: VerifyRequest): Promise<VerifyResult> {
  try {
    return await verifyRead(request);
  } catch (error) {
    // Damaged or incomplete: whatever recorded it whole beside it is about bytes it no longer holds.
    if (error instanceof CorruptArchiveError || error instanceof AgeDamagedError) {
      const kept = await request.location.forgetWhole?.(request.signal !== undefined ? { signal: request.signal } : {}).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      // The verdict stands; what still calls the archive whole is said with it (before: nothing, the object still listed verified).
      if (kept !== undefined) throw withRecordKept(error, kept);
    }
    throw error;
  }
}

/** `error` (the archive damaged), saying that what records the archive whole beside it could not be removed (a role without s3:PutObjectTagging, a directory not this user's to write). */
function withRecordKept(error: CorruptArchiveError | AgeDamagedError, failure: unknown): CorruptArchiveError | AgeDamagedError {
  const message = `${error.message}; what records it whole beside it (its verification mark, the size its backup stored) could not be removed, so listings and prune may still count it whole: ${describeError(failure)}`;
  return error instanceof AgeDamagedError ? new AgeDamagedError(message, error.part, { cause: error }) : new CorruptArchiveError(message, { cause: error });
}

async function verifyRead(request: VerifyRequest): Promise<VerifyResult> {
  const started = Date.now();
  const { location, signal } = request;
  const read = await readTenantArchive(location, {
    limits: request.limits ?? DEFAULT_LIMITS,
    signal,
    ...(request.identities !== undefined && { identities: request.identities }),
    ...(request.ageCli !== undefined && { ageCli: request.ageCli }),
    discard: true,
    prepare: async () => NOWHERE,
    ...(request.onProgress !== undefined && { onProgress: request.onProgress }),
  });
  const { extracted } = read;
  const { manifest, manifestSha256 } = extracted;
  // A dated marker promises a footer (they came in one version): without it the archive is cut short, or its backup
  // never finished it. The listing calls it incomplete and prune counts it by no rule; verify agrees, and marks nothing
  // (a restore still reads it: its files are all there, checked).
  if (read.marker?.createdAt !== undefined && read.footer === undefined) {
    throw new CorruptArchiveError(
      `incomplete: ${location.display} has no manifest footer at its end (cut short, or its backup never finished it): ` +
        'every file in it matched its manifest and a restore can still read it, but it is not recorded as verified and prune counts it by no rule',
    );
  }
  // Bytes after the footer: the listing finds no footer at the end and calls it cut short or damaged; verify agrees, as above.
  if (read.bytesAfterFooter !== undefined) {
    throw new CorruptArchiveError(
      `incomplete: ${location.display} continues after its manifest footer (${groupThousands(read.bytesAfterFooter)} bytes follow it: appended by another tool?): ` +
        'every file in it matched its manifest and a restore can still read it, but it is not recorded as verified and prune counts it by no rule',
    );
  }
  const notices = encryptionNotices(read, request.identities);
  let recorded: string | undefined;
  if (manifest === undefined || manifestSha256 === undefined) {
    notices.push('the archive has no manifest (made by another tool?): its tar stream is sound, but per-file verification was not possible');
    notices.push(...ephemeralNotice(read, false));
  } else if (request.record ?? true) {
    if (location.markVerified === undefined) notices.push(`${location.display} cannot record a verification`);
    else {
      const verifiedAt = (request.now ?? (() => new Date()))().toISOString();
      try {
        await location.markVerified({ verifiedAt, manifestSha256, createdAt: new Date(manifest.createdAt).toISOString(), tenant: manifest.tenant, toolVersion: manifest.tool.version }, { signal });
        recorded = verifiedAt;
      } catch (error) {
        notices.push(`the verification was not recorded beside the archive: ${describeError(error)}`);
      }
    }
  }
  return {
    operation: 'verify',
    location: location.display,
    ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
    tenant: extracted.tenant,
    ...archiveCounts(read),
    durationMs: Date.now() - started,
    verified: manifest !== undefined,
    ...(manifestSha256 !== undefined && { manifestSha256 }),
    ...(manifest !== undefined && { backupCreatedAt: manifest.createdAt, toolVersion: manifest.tool.version }),
    warnings: manifest?.warnings ?? [],
    ...(recorded !== undefined && { recorded }),
    notices,
    ...(read.encrypted && { decrypted: true as const }),
  };
}
