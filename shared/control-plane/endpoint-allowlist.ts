// The S3-compatible endpoints a deployment allows (OPENCLAW_ALLOWED_ENDPOINTS, the stack's
// allowedEndpoints), and whether a request's --endpoint is one of them.
//
// An entry is `http(s)://host[:port]` (that origin, any path: the whole host) or
// `http(s)://host[:port]/path` (a store behind a proxy at /path: that path and below it only,
// compared segment by segment, so /minio-a allows /minio-a and /minio-a/x but not /minio-ab or
// /minio-b). The SDK sends the endpoint's path as the URL parser normalizes it (`..`, `.` and
// their percent-encodings resolved), so that is what is compared. A proxy may decode more than
// that (%2F, `;` parameters, a case-insensitive match), so a path is compared only when every
// segment is plain (letters, digits, `.`, `_`, `~`, `-`, not `.` or `..`), in the entry and in
// the request; case counts (/MINIO-A is not /minio-a). An entry with credentials, a query, a
// fragment or a path it cannot compare is refused where it is configured.

const PLAIN_SEGMENT = /^[A-Za-z0-9._~-]+$/;

/** The path's segments when each is plain; undefined otherwise. '' and '/' have none. */
function plainSegments(pathname: string): string[] | undefined {
  const trimmed = pathname.replace(/\/$/, '');
  if (trimmed === '') return [];
  const segments = trimmed.slice(1).split('/');
  return segments.every((segment) => PLAIN_SEGMENT.test(segment) && segment !== '.' && segment !== '..') ? segments : undefined;
}

/** The path of a URL as written (between the authority and any query or fragment). */
function writtenPath(url: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#\\]*([^?#]*)/.exec(url)?.[1] ?? '';
}

/**
 * Why an allowlist entry cannot be compared, or undefined when it can; `https` refuses http.
 */
export function allowedEndpointProblem(entry: string, options: { https?: boolean } = {}): string | undefined {
  const scheme = options.https === true ? 'https' : 'http(s)';
  const form = `${scheme}://host[:port] or ${scheme}://host[:port]/path`;
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return `is not a URL (${form})`;
  }
  if (url.protocol !== 'https:' && (options.https === true || url.protocol !== 'http:')) return `must be ${form}`;
  if (url.username !== '' || url.password !== '' || entry.includes('@')) return 'must not hold credentials (a request gives its own keys)';
  if (entry.includes('?') || entry.includes('#')) return 'must have no query or fragment';
  if (url.hostname === '') return 'has no host';
  const written = writtenPath(entry);
  if (plainSegments(url.pathname) === undefined || written.replace(/\/$/, '') !== url.pathname.replace(/\/$/, '')) {
    return 'has a path that cannot be compared: its segments must be letters, digits, ".", "_", "~" and "-" (no "." or ".." segment, no "//", no percent-encoding)';
  }
  return undefined;
}

/** An entry as compared and shown: origin and path, without a final "/". Check it with allowedEndpointProblem first. */
export function allowedEndpoint(entry: string): string {
  const url = new URL(entry);
  return `${url.origin}${url.pathname.replace(/\/$/, '')}`;
}

/** `scheme://host[:port][/path]` of a requested endpoint as the SDK would use it, or undefined when it is not an http(s) URL. */
export function requestedEndpoint(endpoint: string): string | undefined {
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
}

/** Whether a request's `--endpoint` is one the list allows (entries as allowedEndpoint returns them). */
export function endpointAllowed(allowed: readonly string[], endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  const requested = plainSegments(url.pathname.replace(/\/+$/, ''));
  return allowed.some((entry) => {
    const allowedUrl = new URL(entry);
    if (allowedUrl.origin !== url.origin) return false;
    const prefix = plainSegments(allowedUrl.pathname);
    if (prefix === undefined) return false;
    if (prefix.length === 0) return true;
    return requested !== undefined && requested.length >= prefix.length && prefix.every((segment, index) => requested[index] === segment);
  });
}
