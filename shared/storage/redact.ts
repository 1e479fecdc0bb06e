// Scrubs secrets from text that may reach a user or a log: the secret key and session
// token we were given, the signing parts of presigned URLs and Authorization headers, and
// age secret keys (`AGE-SECRET-KEY-1…`, `AGE-SECRET-KEY-PQ-1…`, plugin identities
// `AGE-PLUGIN-…-1…`), which a `--pipe` command's stderr can echo: `--pipe "age -r AGE-SECRET-KEY-1…"` (the secret key
// pasted where the public one goes) failed with `age: error: unknown recipient type: "AGE-…"`,
// the whole key in the backup's error line.
// Messages are built from known-safe pieces in the first place; this is the second layer
// for the pieces we do not control (an SDK error's own message).

const MASK = '***';

// Query parameters of presigned URLs (SigV4 and SigV2) that grant access.
const PRESIGNED_PARAMETERS = /\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=[^&\s"'<>]*/gi;
// `Authorization: AWS4-HMAC-SHA256 Credential=…, Signature=…` and SigV2's `AWS AKID:signature`.
const AUTHORIZATION = /\b(AWS4-HMAC-SHA256\s+Credential=|AWS [A-Z0-9]{16,}:)[^\r\n]*/g;
// `user@` and `user:password@` in URLs; a password may hold `/` (AWS secret keys do), a user
// may not (`s3://bucket/key@2026` is a key, not credentials).
// The scheme is bounded (32 characters): unbounded, every word start of a long run of letters and dashes scanned
// the rest of it (100 KB of `a-`: 6.3 s of CPU in one message).
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]{0,31}:\/\/)(?:[^/@\s:]*:[^@\s]*|[^/@\s]+)@/gi;
// Credentials end at an `@` and hold no whitespace: the pattern runs only on each whitespace-free run up to its last `@`
// (maskUrlCredentials). Run on the whole text, each `a://` after a run's last `@` (or in a run with none) scanned the rest
// of that run for one: 16 KB of `a://` took 0.7 s, 64 KB 10 s, 1 MB some 45 minutes (an S3 server's error message,
// a --pipe command's stderr line).
const WHITESPACE_FREE = /\S+/g;
// An age identity: its human-readable part, the bech32 separator `1`, then its data (any case: a mistyped one is still the key).
// The part may name more words, each ended by `-`: post-quantum keys (`AGE-SECRET-KEY-PQ-1…`, age 1.3+, the default of
// age-keygen from 1.4) and plugins named with a dash (`AGE-PLUGIN-FIDO2-HMAC-1…`) were shown whole. The words are
// bounded (8 of 64 characters at most): unbounded, each `AGE-PLUGIN-` of a long line scanned the rest of it
// (110 KB of them: 1.8 s of CPU).
// What a key may follow: anything but a letter (a space, a quote, `=`, `/`, or the digit or `_` of a name it was pasted
// onto: `\b` had let `X_AGE-SECRET-KEY-1…` and `0AGE-SECRET-KEY-1…` through whole), or a letter that ends an escape:
// `\n` (JSON, C strings), `%0A` / `%3D` (URL encoding), `ESC[1m` (a terminal colour). A word that merely ends in
// "age" (`image-plugin-resize-1a`, `storage-secret-key-1b`) is not a key.
const AGE_SECRET_KEYS = /(?:(?<![a-z])|(?<=\\[a-z]|%[0-9a-f]{2}|\x1b\[[0-9;]{0,16}m))(AGE-(?:SECRET-KEY|PLUGIN)-(?:[0-9A-Z+._]{1,64}-){0,8})1[0-9A-Z]+/gi;
// A whole X25519 secret key as age-keygen writes it (exact case, 58 bech32 characters of data) is masked after
// anything, a letter too: `wAGE-SECRET-KEY-1QQQ…` (pasted onto a word, or after an escape not listed above) was shown
// whole. Only the exact form: a lowercase word such as `storage-secret-key-1b` is never one.
const WHOLE_AGE_SECRET_KEY = /AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}/g;

/** Replaces every occurrence of each secret, and anything that looks like signing material. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let result = text;
  for (const secret of secrets) {
    // Very short "secrets" would mask innocent text and are not worth protecting.
    if (secret !== undefined && secret.length >= 4) result = result.split(secret).join(MASK);
  }
  return result
    .replace(PRESIGNED_PARAMETERS, (_match, name: string) => `${name}=${MASK}`)
    .replace(AUTHORIZATION, (_match, scheme: string) => `${scheme.split(/[\s=]/)[0]} ${MASK}`)
    .replace(WHITESPACE_FREE, maskUrlCredentials)
    .replace(AGE_SECRET_KEYS, (_match, prefix: string) => `${prefix.toUpperCase()}1${MASK}`)
    .replace(WHOLE_AGE_SECRET_KEY, `AGE-SECRET-KEY-1${MASK}`);
}

/** `user:password@` after a scheme in one whitespace-free run, searched only up to its last `@`: no match ends past it. */
function maskUrlCredentials(run: string): string {
  const end = run.lastIndexOf('@') + 1;
  if (end === 0) return run;
  return run.slice(0, end).replace(URL_CREDENTIALS, (_match, scheme: string) => `${scheme}${MASK}@`) + run.slice(end);
}
