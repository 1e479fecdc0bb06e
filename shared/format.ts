// Human-readable numbers for messages and reports, and names and text from tenants and
// archives as they may be shown to a person (escaped); no dependencies, so the CLI can load
// it without pulling in the archive code.

import { rawByteLength } from './raw-name.js';
import type { RecoveryAction } from './tenant/slot.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** "12 files", or "12 files (10 hard links)" when some of the names are hard links to others. */
export function filesCounted(files: number, hardlinks: number | undefined): string {
  return hardlinks === undefined || hardlinks === 0 ? plural(files, 'file') : `${plural(files, 'file')} (${plural(hardlinks, 'hard link')})`;
}

/** "1 file", "2,345 files". */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${groupThousands(count)} ${count === 1 ? singular : pluralForm}`;
}

/** 1234567 -> "1,234,567" (toLocaleString would load ICU's locale data: ~12 ms on a CLI's first call). */
export function groupThousands(count: number): string {
  const [whole, fraction] = String(count).split('.');
  const sign = whole!.startsWith('-') ? '-' : '';
  const digits = sign === '' ? whole! : whole!.slice(1);
  const grouped = digits.replace(/\B(?=(\d{3})+$)/g, ',');
  return `${sign}${grouped}${fraction === undefined ? '' : `.${fraction}`}`;
}

// Control characters (C0, DEL, C1) and the invisible marks that reorder text or break lines:
// a name or note holding one could move the cursor, recolour the screen, forge a log line or
// pass for another name. A lone surrogate is a byte of a name that is not UTF-8
// (raw-name.ts: `caf\xe9` is held as "caf\udce9"), shown as JSON shows it: `caf\udce9`.
// eslint-disable-next-line no-control-regex
const UNSAFE_TO_SHOW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

function escapeUnsafe(char: string): string {
  return SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Text from a tenant or an archive (a note, a reason, a message that may quote a name) as it
 * may be shown to a person: control characters and invisible marks written as JSON writes
 * them (`\n`, `\t`, `\u001b`), everything else as it is. Text already shown this way is
 * left unchanged, so a message may pass through it twice.
 */
export function shownText(text: string): string {
  return text.replace(UNSAFE_TO_SHOW, escapeUnsafe);
}

/** Longest path shown whole: PATH_MAX. A longer one is no path a system call takes. */
const SHOWN_PATH_MAX_BYTES = 4095;
/** How much of a longer path is shown. */
const SHOWN_PATH_START_CHARS = 100;

/**
 * A file name or path as it may be shown to a person: escaped like JSON (`\\` for a
 * backslash too, so `a\nb` the newline and `a\\nb` the two characters stay apart), without
 * quotes. A path longer than PATH_MAX is shown by its start: `first 100 characters… (N bytes)`.
 */
export function shownPath(path: string): string {
  // A UTF-16 unit takes at most 3 bytes in UTF-8: most paths are ruled out by length.
  if (path.length * 3 > SHOWN_PATH_MAX_BYTES) {
    // A byte that is not UTF-8 (a lone surrogate, raw-name.ts) is one byte, not U+FFFD's three.
    const bytes = rawByteLength(path);
    if (bytes > SHOWN_PATH_MAX_BYTES) return `${shownPath(startOf(path, SHOWN_PATH_START_CHARS))}… (${groupThousands(bytes)} bytes)`;
  }
  return shownText(path.replaceAll('\\', '\\\\'));
}

/**
 * Said after "no archive at NAME" when NAME holds what a shown name is escaped into (a doubled
 * backslash, a `\uXXXX`): it may have been copied from a listing, which shows a name that way
 * (shownPath), while a location is taken as written.
 */
export function escapedNameHint(name: string): string {
  return /\\\\|\\u[0-9a-fA-F]{4}/.test(name)
    ? ' (a listing shows a name escaped: each backslash doubled, a control character as \\u…; write a backslash once, or take the location from --json)'
    : '';
}

/** `shownPath` in double quotes (a `"` in it escaped as `\"`), where a message quotes the name. */
export function quotedPath(path: string): string {
  return `"${shownPath(path).replaceAll('"', '\\"')}"`;
}

/**
 * A value given on the command line, quoted as JSON quotes it, for a message that refuses it:
 * one past `chars` characters by its start and its length, so that the one line stays readable.
 */
export function quotedValue(value: string, chars = 64): string {
  return value.length > chars ? `${JSON.stringify(startOf(value, chars))}… (${groupThousands(value.length)} characters)` : JSON.stringify(value);
}

/** The first `chars` UTF-16 units of `text`, not splitting a surrogate pair (one unit fewer where the cut would). */
export function startOf(text: string, chars: number): string {
  const end = /[\ud800-\udbff]/.test(text.charAt(chars - 1)) ? chars - 1 : chars;
  return text.slice(0, end);
}

/**
 * What a command settled first of an interrupted restore of `tenant` (killed, or one that lost
 * its lock), in a user's words; "" for nothing. `there`: whether the tenant is there now (a
 * rolled-back restore of a tenant that did not exist before, `--as new`, leaves none).
 */
export function recoveryText(tenant: string, action: RecoveryAction, there = true): string {
  const restore = `an interrupted earlier restore of tenant "${tenant}"`;
  switch (action) {
    case 'none':
      return '';
    case 'rolled-back':
      return there
        ? `${restore} was rolled back first: the tenant is as it was before that restore`
        : `${restore} was rolled back first: there was no tenant "${tenant}" before it and there is none now (run that restore again)`;
    case 'finished-commit':
      return `${restore} was finished first: the restored tenant is in place`;
    case 'removed-leftovers':
      return `what an interrupted earlier operation on tenant "${tenant}" left behind was tidied up first`;
    case 'kept-old':
      return `${restore} was settled first, keeping the tenant as it was before that restore`;
    case 'kept-new':
      return `${restore} was settled first, keeping the restored tenant`;
    case 'kept-slot':
      return `${restore} was settled first, keeping what is in the tenant's directory`;
    default:
      // One of a later gateway's, which this CLI has no words for: by its name ("note: undefined" before).
      return `an interrupted earlier operation on tenant "${tenant}" was settled first (${shownText(String(action))})`;
  }
}
