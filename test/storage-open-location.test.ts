// openLocation: which location each spec gives, every usage error before any client
// exists, no secret in display or messages, and the AWS SDK loaded only for s3:// specs.

import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { InvalidNameError, UsageError } from '../shared/errors.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { openLocation, redact, type LocationOptions } from '../shared/storage/open-location.js';
import { openStore, type StoreOptions } from '../shared/storage/open-store.js';
import { S3Location } from '../shared/storage/s3.js';

const run = promisify(execFile);
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

describe('openLocation', () => {
  it('opens s3:// as an S3 location shown without credentials', async () => {
    const location = await openLocation('s3://my-bucket/acme/x.tar.zst', {
      endpoint: 'https://minio.internal:9000',
      accessKey: 'AKIAEXAMPLE',
      secretKey: SECRET,
    });
    expect(location).toBeInstanceOf(S3Location);
    expect(location.display).toBe('s3://my-bucket/acme/x.tar.zst');
    expect(location).toMatchObject({ bucket: 'my-bucket', key: 'acme/x.tar.zst' });
    expect(JSON.stringify(location.display)).not.toContain(SECRET);
  });

  it('shows an endpoint with the path its requests go below (a store behind a proxy at /s3), without a trailing slash', async () => {
    const shown = async (endpoint: string) => ((await openLocation('s3://my-bucket/x', { endpoint })) as S3Location).endpoint;
    expect(await shown('http://127.0.0.1:9000/s3/')).toEqual({ url: 'http://127.0.0.1:9000/s3', source: '--endpoint' });
    expect(await shown('https://minio.internal:9000/')).toEqual({ url: 'https://minio.internal:9000', source: '--endpoint' });
    expect(await shown('https://minio.internal')).toEqual({ url: 'https://minio.internal', source: '--endpoint' });
  });

  it('sizes S3 parts from expectedBytes', async () => {
    const location = (await openLocation('s3://my-bucket/x', { region: 'us-east-1', expectedBytes: 400 * 1024 ** 3 })) as S3Location;
    expect(location.plan.partSize).toBeGreaterThan(20 * 1024 * 1024);
  });

  it('opens paths and file:// URLs as local files', async () => {
    expect(await openLocation('/var/backups/acme.tar.zst')).toEqual(new LocalFileLocation('/var/backups/acme.tar.zst'));
    const relative = await openLocation('backups/acme.tar.zst');
    expect(relative.display).toBe(join(process.cwd(), 'backups/acme.tar.zst'));
    const url = await openLocation('file:///var/backups/acme%20b.tar.zst');
    expect(url).toBeInstanceOf(LocalFileLocation);
    expect((url as LocalFileLocation).path).toBe('/var/backups/acme b.tar.zst');
  });

  it('takes a colon in a file name when the path says it is one', async () => {
    expect((await openLocation('./s3:/x.tar.zst')) as LocalFileLocation).toEqual(new LocalFileLocation('./s3:/x.tar.zst'));
    expect(((await openLocation('backup:2026-06-03.tar.zst')) as LocalFileLocation).path).toBe(join(process.cwd(), 'backup:2026-06-03.tar.zst'));
  });

  it('wraps the location in the --pipe command, keeping the command out of display', async () => {
    const location = await openLocation('/tmp/x.tar.zst.age', { pipe: 'age -r age1secretish' });
    expect(location.display).toBe('/tmp/x.tar.zst.age (through the --pipe command)');
  });

  it.each<[string, string, LocationOptions, RegExp]>([
    ['empty spec', '', {}, /location is empty/],
    ['--endpoint on a path', '/tmp/x', { endpoint: 'https://h' }, /--endpoint applies only to s3:\/\/ locations/],
    ['--region on a path', '/tmp/x', { region: 'eu-west-1' }, /--region applies only/],
    ['--aws-profile on a path', '/tmp/x', { awsProfile: 'p' }, /--aws-profile applies only/],
    ['--access-key on a path', '/tmp/x', { accessKey: 'a', secretKey: 'b' }, /--access-key applies only/],
    ['--access-key alone', 's3://bucket/x', { accessKey: 'AK' }, /--access-key and --secret-key go together/],
    ['--secret-key alone', 's3://bucket/x', { secretKey: SECRET }, /--access-key and --secret-key go together/],
    ['profile and keys', 's3://bucket/x', { awsProfile: 'p', accessKey: 'a', secretKey: SECRET }, /exclude each other/],
    ['empty profile', 's3://bucket/x', { awsProfile: ' ' }, /--aws-profile needs a value/],
    ['bad region', 's3://bucket/x', { region: 'us east 1' }, /invalid --region/],
    ['endpoint not a URL', 's3://bucket/x', { endpoint: 'minio:9000 x' }, /invalid --endpoint/],
    ['endpoint ftp', 's3://bucket/x', { endpoint: 'ftp://minio' }, /only http:\/\/ and https:\/\//],
    ['endpoint without its scheme', 's3://bucket/x', { endpoint: 'minio.internal:9000' }, /^invalid --endpoint "minio\.internal:9000": give the URL with its scheme, https:\/\/minio\.internal:9000 \(or http:\/\/minio\.internal:9000 for a store without TLS\)$/],
    ['endpoint an address without its scheme', 's3://bucket/x', { endpoint: '127.0.0.1:9000' }, /^invalid --endpoint "127\.0\.0\.1:9000": give the URL with its scheme, https:\/\/127\.0\.0\.1:9000 /],
    ['endpoint a host name alone', 's3://bucket/x', { endpoint: 'minio.internal' }, /give the URL with its scheme, https:\/\/minio\.internal /],
    ['endpoint with credentials', 's3://bucket/x', { endpoint: `https://AK:${encodeURIComponent(SECRET)}@minio` }, /credentials in --endpoint/],
    ['endpoint with query', 's3://bucket/x', { endpoint: 'https://minio/?X-Amz-Signature=abc' }, /no query/],
    [
      'an AWS bucket address as the endpoint',
      's3://backups/acme/x.tar.zst',
      { endpoint: 'https://backups.s3.eu-west-1.amazonaws.com' },
      /^invalid --endpoint: https:\/\/backups\.s3\.eu-west-1\.amazonaws\.com is the address of bucket "backups", not of S3: give https:\/\/s3\.eu-west-1\.amazonaws\.com \(on AWS, leave the endpoint out\)$/,
    ],
    [
      'an AWS bucket address written fully qualified',
      's3://backups/acme/x.tar.zst',
      { endpoint: 'https://backups.s3.eu-west-1.amazonaws.com./' },
      /^invalid --endpoint: https:\/\/backups\.s3\.eu-west-1\.amazonaws\.com\. is the address of bucket "backups", not of S3: give https:\/\/s3\.eu-west-1\.amazonaws\.com\. \(on AWS, leave the endpoint out\)$/,
    ],
    ...[
      'https://myap-123456789012.s3-accesspoint.us-east-1.amazonaws.com',
      'https://123456789012.s3-control.us-east-1.amazonaws.com',
      'https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com',
      'https://backups.s3-accelerate.amazonaws.com',
      'https://s3-accelerate.dualstack.amazonaws.com',
      'https://backups.s3-website-us-east-1.amazonaws.com',
      'https://backups.s3-website.eu-west-1.amazonaws.com',
    ].map((endpoint): [string, string, LocationOptions, RegExp] => [
      `${endpoint} (virtual-hosted only) as the endpoint, not named as a bucket`,
      's3://backups/acme/x.tar.zst',
      { endpoint },
      new RegExp(`^invalid --endpoint: ${endpoint.replaceAll('.', '\\.')} is an address of AWS S3 that takes no path-style requests \\(.*\\): on AWS leave the endpoint out, and name an access point by its alias as the bucket \\(s3://ALIAS/key\\)$`),
    ]),
    ['empty --pipe', '/tmp/x', { pipe: '  ' }, /--pipe needs a command/],
    ['negative size', '/tmp/x', { expectedBytes: -1 }, /whole number of bytes/],
    ['fractional size', '/tmp/x', { expectedBytes: 1.5 }, /whole number of bytes/],
    ['uppercase scheme', 'S3://bucket/x', {}, /lowercase/],
    ['an S3 web address', 'https://bucket.s3.amazonaws.com/x', {}, /^"https:\/\/…" is an S3 object's web address, not a location: write "s3:\/\/bucket\/x"$/],
    ['another web address', 'https://minio.internal:9000/bucket/x', {}, /^"https:\/\/…" is a web address, not a location: give s3:\/\/bucket\/key \(an S3-compatible store's address goes in --endpoint\) or a file path$/],
    ['a name ending in a slash where no directory is', '/nonexistent-openclaw-dir/', {}, /names a directory/],
    ['file URL with a host', 'file://server/share/x', {}, /invalid file URL/],
    ['s3 URL with one slash', 's3:/bucket/key.tar.zst', {}, /"s3:\/bucket\/key.tar.zst" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/key/],
    ['s3 URL without slashes', 's3:bucket/key', {}, /mistyped URL.*s3:\/\/bucket\/key/],
    ['a bare s3:', 's3:', {}, /mistyped URL/],
    ['uppercase s3 with one slash', 'S3:/bucket/key', {}, /mistyped URL.*s3:\/\/bucket\/key/],
    ['s3 URL without the colon', 's3//bucket/key', {}, /mistyped URL.*s3:\/\/bucket\/key/],
    ['gs URL with one slash', 'gs:/bucket/key', {}, /mistyped URL.*gs:\/\/… \(not supported/],
    ['https without slashes', 'https:host/x', {}, /mistyped URL/],
    ['gs URL', 'gs://bucket/key', {}, /unsupported location "gs:\/\/…"/],
    ['file URL with one slash', 'file:/var/x.tar.zst', {}, /mistyped URL.*file:\/\/\/absolute\/path/],
  ])('refuses %s with a usage error', async (_label, spec, options, message) => {
    const error = await openLocation(spec, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(SECRET);
    expect((error as Error).message).not.toContain(encodeURIComponent(SECRET));
  });

  it('takes S3\'s own endpoints, a PrivateLink one among them, as endpoints', async () => {
    for (const endpoint of ['https://s3.amazonaws.com', 'https://s3.eu-west-1.amazonaws.com', 'https://s3.dualstack.eu-west-1.amazonaws.com', 'https://s3-fips.dualstack.us-east-1.amazonaws.com',
      'https://s3-external-1.amazonaws.com',
      'https://s3.cn-north-1.amazonaws.com.cn',
      'https://vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com',
      // AWS's documented endpoint_url for buckets through PrivateLink, and China's interface endpoints.
      'https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com',
      'https://bucket.vpce-1a2b3c4d-5e6f.s3.cn-north-1.vpce.amazonaws.com.cn',
    ]) {
      const location = await openLocation('s3://backups/acme/x.tar.zst', { endpoint, accessKey: 'AK', secretKey: SECRET });
      expect(location.display).toBe('s3://backups/acme/x.tar.zst');
    }
  });

  // Before any of them, a location is checked as written: `S3://b/k --endpoint URL` was told
  // "--endpoint applies only to s3:// locations", and ` s3://b/k` (a quoted variable's space)
  // was taken as the relative path ` s3:/b/k`, where the backup then landed.
  it.each<[string, string, LocationOptions, RegExp]>([
    ['an S3 URL after a space', ' s3://bucket/acme.tar.zst', {}, /^" s3:\/\/bucket\/acme.tar.zst" starts with whitespace: write the location without it \(a local name that starts so: prefix it with \.\/\)$/],
    ['a path after a tab', '\t/var/backups/acme.tar.zst', {}, /starts with whitespace/],
    ['an S3 URL after a space, with --endpoint', ' s3://bucket/x', { endpoint: 'https://minio.internal:9000' }, /starts with whitespace/],
    ['an uppercase scheme with --endpoint', 'S3://bucket/x', { endpoint: 'https://minio.internal:9000' }, /^S3 URLs are written in lowercase: s3:\/\/bucket\/key$/],
    ['one slash with --region', 's3:/bucket/x', { region: 'eu-west-1' }, /"s3:\/bucket\/x" looks like a mistyped URL/],
    ['a web address with --aws-profile', 'https://bucket.s3.eu-west-1.amazonaws.com/a/b.tar.zst', { awsProfile: 'p' }, /S3 object's web address, not a location: write "s3:\/\/bucket\/a\/b.tar.zst"/],
  ])('names %s as written, before the storage flags', async (_label, spec, options, message) => {
    const error = await openLocation(spec, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });

  it('names the S3 URL of a web address from its host and path, never its query (a presigned URL\'s signature)', async () => {
    for (const [spec, meant] of [
      ['https://my.bucket.s3.us-east-1.amazonaws.com/acme/a%20b.tar.zst?X-Amz-Signature=SIGNATURE', 's3://my.bucket/acme/a b.tar.zst'],
      ['https://bucket.s3.dualstack.eu-west-1.amazonaws.com/k', 's3://bucket/k'],
      ['http://s3.amazonaws.com/bucket/acme/x.tar.zst?X-Amz-Signature=SIGNATURE', 's3://bucket/acme/x.tar.zst'],
      ['https://s3-eu-west-1.amazonaws.com/bucket/k', 's3://bucket/k'],
    ]) {
      const error = (await openLocation(spec!).catch((e: unknown) => e)) as Error;
      expect(error, spec).toBeInstanceOf(UsageError);
      expect(error.message, spec).toContain(`write ${JSON.stringify(meant)}`);
      expect(error.message, spec).not.toContain('SIGNATURE');
    }
    // Only a bucket, or no S3 host: no URL to name.
    await expect(openLocation('https://s3.amazonaws.com/bucket')).rejects.toThrow(/is a web address, not a location/);
  });

  it('echoes a location it refuses as written without its credentials or a presigned signature', async () => {
    for (const spec of [
      ` s3://AKIAEXAMPLE:${SECRET}@bucket/k.tar.zst`,
      `s3:/AKIAEXAMPLE:${SECRET}@bucket/k.tar.zst`,
      `s3//AKIAEXAMPLE:${SECRET}@bucket/k.tar.zst`,
      `s3:AKIAEXAMPLE:${SECRET}@bucket/k.tar.zst`,
      ` https://user:${SECRET}@host/k`,
      ` https://bucket.s3.amazonaws.com/k?X-Amz-Signature=${SECRET}`,
    ]) {
      for (const refusal of [await openLocation(spec).catch((e: unknown) => e), await openStore(spec).catch((e: unknown) => e)] as Error[]) {
        expect(refusal, spec).toBeInstanceOf(UsageError);
        expect(refusal.message, spec).toMatch(/starts with whitespace|looks like a mistyped URL/);
        expect(refusal.message, spec).not.toContain(SECRET);
        expect(refusal.message, spec).not.toContain(SECRET.slice(0, 12));
      }
    }
  });

  it('reads a "+" in an S3 web address as the space S3 reads there, a %2B as a "+"', async () => {
    // The console's object URL of the key `acme/a b+c.tar.zst`.
    const error = (await openLocation('https://bucket.s3.eu-west-1.amazonaws.com/acme/a+b%2Bc.tar.zst').catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('write "s3://bucket/acme/a b+c.tar.zst"');
  });

  it('names no bucket for an access point\'s or another S3 feature\'s web address (its first label is no bucket of the user\'s)', async () => {
    for (const spec of [
      'https://backups-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/acme/x.tar.zst',
      'https://backups-123456789012.s3-accesspoint-fips.dualstack.us-east-1.amazonaws.com/acme/x.tar.zst',
      'https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com/acme/x.tar.zst',
      'https://ol-ap-123456789012.s3-object-lambda.us-east-1.amazonaws.com/acme/x.tar.zst',
      'https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/accesspoint/ap',
    ]) {
      const error = (await openLocation(spec, {}).catch((e: unknown) => e)) as Error;
      expect(error, spec).toBeInstanceOf(UsageError);
      expect(error.message, spec).toMatch(/^"https:\/\/…" is a web address, not a location: give s3:\/\/bucket\/key/);
    }
    // A website endpoint, FIPS, the legacy global host: a bucket's own.
    for (const [spec, meant] of [
      ['https://backups.s3-website-eu-west-1.amazonaws.com/acme/x.tar.zst', 's3://backups/acme/x.tar.zst'],
      ['https://backups.s3-fips.us-east-1.amazonaws.com/k', 's3://backups/k'],
      ['https://backups.s3-external-1.amazonaws.com/k', 's3://backups/k'],
    ]) {
      expect(((await openLocation(spec!).catch((e: unknown) => e)) as Error).message, spec).toContain(`write ${JSON.stringify(meant)}`);
    }
  });

  it('checks a place of many archives (--in) as written too', async () => {
    const refusal = async (spec: string, options: StoreOptions = {}) => (await openStore(spec, options).catch((e: unknown) => e)) as Error;
    for (const [spec, message] of [
      [' s3://bucket/acme/', /starts with whitespace/],
      ['s3:/bucket/acme/', /^"s3:\/bucket\/acme\/" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/prefix\/ /],
      ['s3:bucket/acme', /looks like a mistyped URL/],
      ['S3://bucket/acme/', /^S3 URLs are written in lowercase: s3:\/\/bucket\/prefix\/$/],
      ['https://bucket.s3.amazonaws.com/acme/', /write "s3:\/\/bucket\/acme\/"/],
      ['file:///var/backups/', /unsupported location "file:\/\/…": give s3:\/\/bucket\/prefix\/ or a directory/],
    ] as const) {
      const error = await refusal(spec, { endpoint: 'http://127.0.0.1:9' });
      expect(error, spec).toBeInstanceOf(UsageError);
      expect(error.message, spec).toMatch(message);
    }
  });

  // The SDK's `Region not accepted: region="" is not a valid hostname component.` at the first request.
  it('refuses an AWS_REGION set but no region name when the SDK would read it: not beside --region or an endpoint', async () => {
    const keys = { accessKey: 'AKIAEXAMPLE', secretKey: SECRET };
    try {
      for (const region of ['', ' ', 'eu west']) {
        vi.stubEnv('AWS_REGION', region);
        await expect(openLocation('s3://my-bucket/acme/x.tar.zst', keys)).rejects.toThrow(
          new UsageError(`invalid AWS_REGION ${JSON.stringify(region)}: unset it, or set a region name such as eu-west-1 (letters, digits, "-" and "_"), or give --region`),
        );
        await expect(openLocation('s3://my-bucket/acme/x.tar.zst', { ...keys, region: 'eu-west-1' })).resolves.toBeInstanceOf(S3Location);
        await expect(openLocation('s3://my-bucket/acme/x.tar.zst', { ...keys, endpoint: 'https://minio.internal:9000' })).resolves.toBeInstanceOf(S3Location);
      }
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('refuses a bad S3 URL as InvalidNameError', async () => {
    await expect(openLocation('s3://Bucket/x', { accessKey: 'a', secretKey: SECRET })).rejects.toBeInstanceOf(InvalidNameError);
    await expect(openLocation('s3://bucket/../x')).rejects.toThrow(/"\.\." segment/);
  });

  it('exports redact for callers that print errors', () => {
    expect(redact(`oops ${SECRET}`, [SECRET])).toBe('oops ***');
  });
});

describe('lazy AWS SDK', () => {
  it('no module of shared/storage imports the AWS SDK statically', async () => {
    const dir = join(import.meta.dirname, '..', 'shared', 'storage');
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.ts')) continue;
      const source = await readFile(join(dir, name), 'utf8');
      const staticImports = source.match(/^import\s+(?!type\b)[^;]*from\s+'@aws-sdk\/[^']+'/gm) ?? [];
      expect(staticImports, name).toEqual([]);
    }
  });

  it('loads the SDK only once an s3:// location is opened', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const sdk = () => Object.keys(require.cache).filter((k) => k.includes('@aws-sdk')).length;
      const { openLocation } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'shared', 'storage', 'open-location.ts'))});
      await openLocation('/tmp/x.tar.zst', { pipe: 'cat' });
      await openLocation('s3://Bad/x').catch(() => {});
      await openLocation('/tmp/x', { endpoint: 'https://h' }).catch(() => {});
      const before = sdk();
      await openLocation('s3://good-bucket/x', { region: 'us-east-1' });
      console.log(JSON.stringify({ before, after: sdk() }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', TSX_DISABLE_CACHE: '1' },
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: number; after: number };
    expect(result.before).toBe(0);
    expect(result.after).toBeGreaterThan(0);
  });
});
