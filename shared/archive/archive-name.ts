// What an archive's file name or key should say about it: the bytes are tar compressed with
// zstd, so `.tar.zst` (plus `.age` or similar when a --pipe command encrypts them). A name
// ending in another format's suffix (`.gz`, `.tgz`, `.tar`…) makes file managers, `tar -xf`
// (which picks its decompressor from the name) and the next operator reach for the wrong
// tool: a warning, not an error, since the name is the operator's to choose.

/** Suffixes of other formats, and what they claim. */
const MISLEADING_SUFFIXES: readonly (readonly [string, string])[] = [
  ['.tar.gz', 'gzip'],
  ['.tgz', 'gzip'],
  ['.gz', 'gzip'],
  ['.tar.bz2', 'bzip2'],
  ['.bz2', 'bzip2'],
  ['.tar.xz', 'xz'],
  ['.xz', 'xz'],
  ['.zip', 'zip'],
  ['.tar', 'an uncompressed tar'],
];

/**
 * A one-line warning when `destination` (a path or s3:// URL) ends like another format's
 * archive, with the name to use instead; undefined when the name is fine. A trailing `.age`
 * (encrypted through --pipe) is looked through. An archive `encrypted` with age (--encrypt-to)
 * under a name that says zstd (`.tar.zst`, `.zst`, `.tzst`) is named with `.age` after it:
 * `zstd -d` and `tar -xf` refuse it, and the next operator reaches for them, not for age.
 * An archive `piped` through a --pipe command is whatever that command writes (`zstd -dc | gzip`
 * makes `.tar.gz` the right name): only the name inside a trailing `.age` is ours to judge.
 */
export function misleadingArchiveName(destination: string, how: { readonly encrypted?: boolean; readonly piped?: boolean } = {}): string | undefined {
  const encrypted = how.encrypted === true;
  const lower = destination.toLowerCase();
  const ageSuffix = lower.endsWith('.age') ? destination.slice(destination.length - '.age'.length) : '';
  if (how.piped === true && ageSuffix === '') return undefined;
  const name = lower.slice(0, lower.length - ageSuffix.length);
  const addedAge = encrypted && ageSuffix === '' ? '.age' : '';
  const match = MISLEADING_SUFFIXES.find(([suffix]) => name.endsWith(suffix));
  if (match === undefined) {
    if (addedAge === '' || !/\.(zst|tzst)$/.test(name)) return undefined;
    return `the archive is encrypted with age, but its name ends in .${name.slice(name.lastIndexOf('.') + 1)} (zstd): consider ${destination}.age (age -d -i KEY_FILE gives the tar.zst back; zstd and tar cannot read it before)`;
  }
  const [suffix, format] = match;
  const stem = destination.slice(0, name.length - suffix.length);
  const better = `${stem}.tar.zst${ageSuffix}${addedAge}`;
  return `the archive is a zstd-compressed tar, but its name ends in ${suffix} (${format}): consider ${better} (tar -xf and file managers pick the tool by the name)`;
}
