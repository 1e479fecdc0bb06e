// Resolution of a symlink target inside a tenant root, the way the kernel would resolve it,
// but against a caller-supplied view of the tree: the real file system at backup time, the
// archive's own entries at restore time. Pure, so both sides share one rule and it can be
// property-tested: a link is acceptable only if every step of its resolution stays inside
// the root.

/** Returns the target of the symlink at `segments` (relative to the root), or undefined if it is not a symlink. */
export type ReadLinkAt = (segments: readonly string[]) => string | undefined;

/** Symlink hops allowed in one resolution (Linux's own limit is 40). */
export const MAX_LINK_HOPS = 40;

/**
 * Work allowed in one resolution, counted per path looked up as its depth (a reader indexed by
 * path passes each of its segments) and one more step per CHARACTERS_PER_STEP characters of
 * the name that changed: a reader is asked for one path after another, each the last one
 * with a name pushed or popped, and hashes and compares only the new name if it keeps the
 * last path's lookups (extract.ts: linkReader), whereas one that starts again at the root
 * reads every name of the path each time. Real links need a few thousand; without a cap,
 * 40 hops of 4 KiB targets 1,000 levels deep took a second per link to check.
 */
export const MAX_RESOLVE_WORK = 1 << 18;
/**
 * Characters of a name that cost a reader as much as passing one more segment (measured on
 * the restore's path table: ~11 ns a segment, ~4 ns a character). Counted by depth alone,
 * 1,040 links through 255-character names cost 18 s of CPU to check from a 5.4 KiB archive,
 * when the reader hashed every name of every path again (a whole path's characters were then
 * counted, and legitimate tenants with long names refused: 70,000 links ten 200-character
 * names deep, which the tool itself had backed up).
 */
export const CHARACTERS_PER_STEP = 3;

/**
 * Resolves `target`, the content of a symlink living in directory `linkDir` (segments
 * relative to the root), to segments relative to the root. Returns undefined when any step
 * escapes the root (an absolute target, a `..` above the root, a chain through another link
 * that leaves it), when the chain is too long to be anything but a loop, or when checking
 * it would take more than MAX_RESOLVE_WORK.
 */
export function resolveInsideRoot(
  linkDir: readonly string[],
  target: string,
  readLinkAt: ReadLinkAt,
  /** Adds the work this resolution took to `spent.work`: a caller checking many links bounds their total. */
  spent?: { work: number },
): string[] | undefined {
  const budget = { hops: MAX_LINK_HOPS, work: MAX_RESOLVE_WORK };
  const resolved = walk([...linkDir], target, readLinkAt, budget);
  if (spent !== undefined) spent.work += MAX_RESOLVE_WORK - Math.max(0, budget.work);
  return resolved;
}

/** Why `resolveInsideRoot` found no target: what a refusal names. */
export type UnresolvedReason =
  /** A step left the root (an absolute target, a `..` above it, a link leading out). */
  | 'escapes'
  /** More than MAX_LINK_HOPS links to follow: a loop, or a chain the kernel would not follow either. */
  | 'too many links'
  /** More than MAX_RESOLVE_WORK to check. */
  | 'too costly';

/**
 * Why `target` (in `linkDir`) does not resolve inside the root, for a link `resolveInsideRoot`
 * refused: the same walk again (as bounded), telling which of its limits ended it.
 */
export function unresolvedReason(linkDir: readonly string[], target: string, readLinkAt: ReadLinkAt): UnresolvedReason {
  const budget = { hops: MAX_LINK_HOPS, work: MAX_RESOLVE_WORK };
  walk([...linkDir], target, readLinkAt, budget);
  if (budget.work < 0) return 'too costly';
  if (budget.hops < 0) return 'too many links';
  return 'escapes';
}

function walk(
  start: string[],
  target: string,
  readLinkAt: ReadLinkAt,
  budget: { hops: number; work: number },
): string[] | undefined {
  if (target.length === 0 || target.startsWith('/') || target.includes('\0')) return undefined;
  let resolved = start;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return undefined;
      resolved.pop();
      continue;
    }
    resolved.push(part);
    budget.work -= resolved.length + Math.floor(part.length / CHARACTERS_PER_STEP);
    if (budget.work < 0) return undefined;
    const next = readLinkAt(resolved);
    if (next === undefined) continue;
    if (--budget.hops < 0) return undefined;
    resolved.pop();
    const expanded = walk(resolved, next, readLinkAt, budget);
    if (expanded === undefined) return undefined;
    resolved = expanded;
  }
  return resolved;
}

