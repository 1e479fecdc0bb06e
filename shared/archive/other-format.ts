// What a file that is not a zstd stream is, by its first bytes: an operator who hands restore
// a .zip, a .tar.gz or a plain tar hears which format it is and how to make an archive restore
// reads, instead of only "bad frame magic at byte 0".

/** Bytes `otherFormatHint` looks at: a tar header's "ustar" magic ends at 262. */
export const OTHER_FORMAT_PROBE_BYTES = 262;

const SIGNATURES: readonly (readonly [magic: readonly number[], hint: string])[] = [
  [[0x1f, 0x8b], 'it is gzip-compressed (a .tar.gz?): recompress it with gzip -dc FILE | zstd -o NAME.tar.zst'],
  [[0x42, 0x5a, 0x68], 'it is bzip2-compressed: recompress it with bzip2 -dc FILE | zstd -o NAME.tar.zst'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'it is xz-compressed: recompress it with xz -dc FILE | zstd -o NAME.tar.zst'],
  [[0x50, 0x4b, 0x03, 0x04], 'it is a ZIP archive: give a tar of tenants/NAME/ compressed with zstd (tar -cf - tenants/NAME | zstd -o NAME.tar.zst)'],
  [[0x50, 0x4b, 0x05, 0x06], 'it is an empty ZIP archive: give a tar of tenants/NAME/ compressed with zstd (tar -cf - tenants/NAME | zstd -o NAME.tar.zst)'],
];

const USTAR = Buffer.from('ustar', 'latin1');

/** The hint for a file whose first bytes are no format known here (a text file, a manifest, a `.partial` cut at its start). */
export const NO_ARCHIVE_HINT = 'it is no archive tenants backup wrote, nor a tar compressed with zstd: give the path of one (tenants backups NAME --in DIR lists those in a directory)';

/** What `prefix` (the first bytes of a file) shows the file to be, and what to do; undefined if nothing known. */
export function otherFormatHint(prefix: Uint8Array): string | undefined {
  for (const [magic, hint] of SIGNATURES) {
    if (prefix.length >= magic.length && magic.every((byte, i) => prefix[i] === byte)) return hint;
  }
  if (prefix.length >= 262 && USTAR.equals(prefix.subarray(257, 262))) return 'it is an uncompressed tar: compress it with zstd FILE -o NAME.tar.zst';
  return undefined;
}
