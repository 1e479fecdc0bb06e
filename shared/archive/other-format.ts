// What a file that is not a zstd stream is, by its first bytes: an operator who hands restore
// a .zip, a .tar.gz or a plain tar hears which format it is and how to make an archive restore
// reads, instead of only "bad frame magic at byte 0". Likewise what a zstd stream decodes to
// when that is not a tar (compressed twice, a .tar.gz or an age file compressed again, a ZIP
// or cpio archive): named as such, not reported as a damaged tar.

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

const GIVE_A_TAR = 'give a tar of tenants/NAME/ compressed with zstd (tar -cf - tenants/NAME | zstd -o NAME.tar.zst)';

const INNER_SIGNATURES: readonly (readonly [magic: readonly number[], hint: string])[] = [
  [[0x28, 0xb5, 0x2f, 0xfd], 'it is compressed twice (it decodes to another zstd stream): decompress it once, zstd -dc FILE -o NEW.tar.zst, and give that'],
  [[0x1f, 0x8b], 'it decodes to a gzip stream (a .tar.gz compressed again?): recompress it with zstd -dc FILE | gzip -dc | zstd -o NEW.tar.zst'],
  [[0x42, 0x5a, 0x68], 'it decodes to a bzip2 stream: recompress it with zstd -dc FILE | bzip2 -dc | zstd -o NEW.tar.zst'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'it decodes to an xz stream: recompress it with zstd -dc FILE | xz -dc | zstd -o NEW.tar.zst'],
  [[0x50, 0x4b, 0x03, 0x04], `it decodes to a ZIP archive: ${GIVE_A_TAR}`],
  [[0x50, 0x4b, 0x05, 0x06], `it decodes to an empty ZIP archive: ${GIVE_A_TAR}`],
  [[...Buffer.from('age-encryption.org/', 'latin1')], 'it decodes to an age-encrypted file (encrypted, then compressed): decompress it, zstd -dc FILE -o NEW.age, and restore that with --identity KEY_FILE'],
  [[...Buffer.from('-----BEGIN AGE', 'latin1')], 'it decodes to an age-encrypted file (encrypted, then compressed): decompress it, zstd -dc FILE -o NEW.age, and restore that with --identity KEY_FILE'],
  [[...Buffer.from('07070', 'latin1')], `it decodes to a cpio archive: ${GIVE_A_TAR}`],
  [[0xc7, 0x71], `it decodes to a cpio archive: ${GIVE_A_TAR}`],
  [[0x71, 0xc7], `it decodes to a cpio archive: ${GIVE_A_TAR}`],
];

/**
 * What `prefix` (the first decoded bytes of a zstd stream, which do not start a tar header)
 * shows the content to be, and what to do; undefined if nothing known. Our own archive
 * compressed again starts with a skippable frame, which counts as compressed twice.
 */
export function innerFormatHint(prefix: Uint8Array): string | undefined {
  if (prefix.length >= 4 && (prefix[0]! & 0xf0) === 0x50 && prefix[1] === 0x2a && prefix[2] === 0x4d && prefix[3] === 0x18) {
    return INNER_SIGNATURES[0]![1];
  }
  for (const [magic, hint] of INNER_SIGNATURES) {
    if (prefix.length >= magic.length && magic.every((byte, i) => prefix[i] === byte)) return hint;
  }
  return undefined;
}
