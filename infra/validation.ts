// Props validation for the infra constructs. Every construct checks all of its props first,
// collects every problem, and throws once: a bad deployment config then shows the whole
// list in one synth instead of one message per attempt. Pure string and number checks only.

/** Thrown by a construct or the app config when its props break the rules. */
export class InfraConfigError extends Error {
  readonly code = 'INFRA_CONFIG';
  constructor(
    /** What was being configured, e.g. `TenantFileSystem`. */
    readonly subject: string,
    /** Every problem found, one line each. */
    readonly problems: readonly string[],
  ) {
    super(`${subject}: invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'InfraConfigError';
  }
}

/** Collects problems while props are checked; `throwIfAny` ends the check. */
export class ProblemList {
  private readonly problems: string[] = [];

  constructor(private readonly subject: string) {}

  /** Records `message` unless `ok` holds. */
  check(ok: boolean, message: string): void {
    if (!ok) this.problems.push(message);
  }

  /** Records a problem unconditionally. */
  add(message: string): void {
    this.problems.push(message);
  }

  /** Checks an optional integer against inclusive bounds. */
  integerInRange(value: number | undefined, name: string, min: number, max: number): void {
    if (value === undefined) return;
    this.check(
      Number.isInteger(value) && value >= min && value <= max,
      `${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }

  throwIfAny(): void {
    if (this.problems.length > 0) throw new InfraConfigError(this.subject, [...this.problems]);
  }
}

// S3 bucket naming rules (general purpose buckets), without the IP-address and reserved
// prefix/suffix rules, which S3 itself enforces at deploy time.
const BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const BUCKET_ARN_PATTERN = /^arn:aws[a-z-]*:s3:::([^/]+)$/;

export function isBucketName(name: string): boolean {
  return BUCKET_NAME_PATTERN.test(name) && !name.includes('..');
}

/** Reads a bucket given as a name or a bucket ARN (not an object ARN); undefined if neither. */
export function bucketNameOf(nameOrArn: string): string | undefined {
  const arn = BUCKET_ARN_PATTERN.exec(nameOrArn);
  const name = arn ? arn[1]! : nameOrArn;
  return isBucketName(name) ? name : undefined;
}

/** AWS resource IDs as the EC2 and EFS APIs print them. */
export const RESOURCE_ID_PATTERNS = {
  fileSystem: /^fs-[0-9a-f]{8,40}$/,
  accessPoint: /^fsap-[0-9a-f]{8,40}$/,
  securityGroup: /^sg-[0-9a-f]{8,40}$/,
  vpc: /^vpc-[0-9a-f]{8,40}$/,
  subnet: /^subnet-[0-9a-f]{8,40}$/,
} as const;

/** An S3 key prefix: path-like, not empty, ending in "/". */
export function isKeyPrefix(prefix: string): boolean {
  if (!prefix.endsWith('/') || prefix.startsWith('/') || prefix.length > 512) return false;
  return prefix
    .slice(0, -1)
    .split('/')
    .every((segment) => /^[A-Za-z0-9!_.*'()-]+$/.test(segment) && segment !== '.' && segment !== '..');
}

/** An absolute POSIX directory path below "/" without ".", ".." or empty segments. */
export function isAbsoluteDirectory(path: string): boolean {
  if (!path.startsWith('/') || path === '/' || path.endsWith('/') || path.length > 100) return false;
  return path
    .slice(1)
    .split('/')
    .every((segment) => /^[A-Za-z0-9._-]+$/.test(segment) && segment !== '.' && segment !== '..');
}

/** An IPv4 CIDR block, `a.b.c.d/n`. */
export function isIpv4Cidr(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (match === null) return false;
  const [, a, b, c, d, bits] = match.map(Number);
  return [a, b, c, d].every((octet) => octet! <= 255) && bits! <= 32;
}
