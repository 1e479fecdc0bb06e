// An in-memory location for tests and demos. It keeps the same contract as the real
// locations (all-or-nothing writes, no silent overwrite, NOT_FOUND on a missing archive,
// abort handling) except bounded memory: it holds whole archives, so never use it for real
// backups. Several locations share one MemoryStore, the way several keys share a bucket.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DestinationExistsError, StorageError } from '../errors.js';
import { abortedError, destroyQuietly, guardReadable, holdErrors, isAbortError, throwIfAborted } from './streams.js';
import { OPERATION_ID_METADATA_KEY } from './types.js';
import type { ArchiveLocation, ArchiveMetadata, CheckWritableOptions, ReadOptions, StoredArchive as StoredArchiveFacts, WriteOptions, WriteResult } from './types.js';

export interface StoredArchive {
  readonly bytes: Buffer;
  readonly metadata: ArchiveMetadata;
  readonly finalMetadata: Readonly<Record<string, string>>;
}

export class MemoryStore {
  readonly archives = new Map<string, StoredArchive>();
}

/** Chunk size of the streams `read` returns, so readers see more than one chunk. */
const READ_CHUNK = 64 * 1024;

export class MemoryLocation implements ArchiveLocation {
  readonly display: string;

  constructor(
    readonly store: MemoryStore,
    readonly name: string,
  ) {
    this.display = `memory:${name}`;
  }

  async checkWritable(options: CheckWritableOptions): Promise<void> {
    if (!options.overwrite && this.store.archives.has(this.name)) throw this.existsError();
  }

  async write(body: Readable, options: WriteOptions): Promise<WriteResult> {
    const { signal } = options;
    holdErrors(body);
    try {
      throwIfAborted(signal);
      if (!options.overwrite && this.store.archives.has(this.name)) throw this.existsError();
      const chunks: Buffer[] = [];
      await pipeline(
        body,
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) chunks.push(Buffer.from(chunk));
        },
        { signal },
      );
      const finalMetadata = { ...(options.finalMetadata?.() ?? {}) };
      throwIfAborted(signal);
      // Checked again at the commit: another writer may have finished meanwhile.
      if (!options.overwrite && this.store.archives.has(this.name)) throw this.existsError();
      const bytes = Buffer.concat(chunks);
      this.store.archives.set(this.name, { bytes, metadata: options.metadata, finalMetadata });
      return { bytes: bytes.length };
    } catch (error) {
      destroyQuietly(body);
      if (isAbortError(error) || signal?.aborted) throw abortedError(signal);
      throw error;
    }
  }

  async read(options: ReadOptions = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    const archive = this.store.archives.get(this.name);
    if (archive === undefined) throw new StorageError(`no archive at ${this.display}`, 'NOT_FOUND');
    const { bytes } = archive;
    options.onSize?.(bytes.length);
    function* chunks(): Generator<Buffer> {
      for (let offset = 0; offset < bytes.length; offset += READ_CHUNK) yield bytes.subarray(offset, offset + READ_CHUNK);
    }
    return guardReadable(Readable.from(chunks(), { objectMode: false }), (error) => error as Error, options.signal);
  }

  async storedArchive(options: ReadOptions = {}): Promise<StoredArchiveFacts | undefined> {
    throwIfAborted(options.signal);
    const archive = this.store.archives.get(this.name);
    if (archive === undefined) return undefined;
    const { runId, createdAt } = archive.metadata;
    const digest = archive.finalMetadata['manifest-sha256'];
    const operationId = archive.finalMetadata[OPERATION_ID_METADATA_KEY] ?? archive.metadata.operationId;
    return { bytes: archive.bytes.length, ...(runId !== undefined && { runId }), ...(operationId !== undefined && { operationId }), createdAt, ...(digest !== undefined && { manifestSha256: digest }) };
  }

  private existsError(): DestinationExistsError {
    const storedByRun = this.store.archives.get(this.name)?.metadata.runId;
    return new DestinationExistsError(`${this.display} already exists: pass --overwrite to replace it`, { ...(storedByRun !== undefined && { storedByRun }) });
  }
}
