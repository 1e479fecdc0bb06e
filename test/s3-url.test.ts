import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../shared/errors.js';
import { formatS3Url, parseS3Url } from '../shared/storage/s3-url.js';

describe('parseS3Url', () => {
  it.each([
    ['s3://my-bucket/acme/2026-06-03.tar.zst', 'my-bucket', 'acme/2026-06-03.tar.zst'],
    ['s3://abc/x', 'abc', 'x'],
    ['s3://a.b-c.123/x.tar.zst.age', 'a.b-c.123', 'x.tar.zst.age'],
    [`s3://${'a'.repeat(63)}/k`, 'a'.repeat(63), 'k'],
    ['s3://bucket/with space/and+plus=eq/ä-ünïcödé.tar.zst', 'bucket', 'with space/and+plus=eq/ä-ünïcödé.tar.zst'],
    ['s3://bucket/a%2Fb?versionId=1#frag', 'bucket', 'a%2Fb?versionId=1#frag'],
    ['s3://bucket/...hidden/..x/x..', 'bucket', '...hidden/..x/x..'],
    ['s3://bucket/😀.tar.zst', 'bucket', '😀.tar.zst'],
    [`s3://bucket/${'k'.repeat(1024)}`, 'bucket', 'k'.repeat(1024)],
    ['s3://1.2.3/x', '1.2.3', 'x'],
  ])('accepts %s', (text, bucket, key) => {
    expect(parseS3Url(text)).toEqual({ bucket, key });
    expect(formatS3Url({ bucket, key })).toBe(text);
  });

  it.each([
    ['my-bucket/key', /not an S3 URL/],
    ['S3://bucket/key', /not an S3 URL/],
    ['s3:/bucket/key', /not an S3 URL/],
    ['s3://', /empty/],
    ['s3:///key', /bucket name "": empty/],
    ['s3://ab/key', /3 to 63 characters/],
    [`s3://${'a'.repeat(64)}/key`, /3 to 63 characters/],
    ['s3://My-Bucket/key', /lowercase/],
    ['s3://my_bucket/key', /only lowercase letters, digits/],
    ['s3://-bucket/key', /start and end with a letter or digit/],
    ['s3://bucket-/key', /start and end with a letter or digit/],
    ['s3://bucket./key', /start and end with a letter or digit/],
    ['s3://my..bucket/key', /must not contain "\.\."/],
    ['s3://my.-bucket/key', /next to a "-"/],
    ['s3://192.168.5.4/key', /IP address/],
    ['s3://xn--bucket/key', /prefix "xn--" is reserved/],
    ['s3://sthree-bucket/key', /prefix "sthree-" is reserved/],
    ['s3://amzn-s3-demo-bucket/key', /prefix "amzn-s3-demo-" is reserved/],
    ['s3://bucket-s3alias/key', /suffix "-s3alias" is reserved/],
    ['s3://bucket--ol-s3/key', /suffix "--ol-s3" is reserved/],
    ['s3://bucket.mrap/key', /suffix "\.mrap" is reserved/],
    ['s3://bucket--x-s3/key', /suffix "--x-s3" is reserved/],
    ['s3://bucket', /has no object key/],
    ['s3://bucket/', /has no object key/],
    ['s3://bucket//key', /starts with "\/"/],
    ['s3://bucket/a//b', /empty segment/],
    ['s3://bucket/a/', /ends with "\/"/],
    ['s3://bucket/../x', /"\.\." segment/],
    ['s3://bucket/a/../x', /"\.\." segment/],
    ['s3://bucket/a/..', /"\.\." segment/],
    ['s3://bucket/./x', /"\." segment/],
    ['s3://bucket/a\\b', /backslash/],
    ['s3://bucket/..\\x', /backslash/],
    ['s3://bucket/a\nb', /control character/],
    ['s3://bucket/a\u0000b', /control character/],
    ['s3://bucket/a\u007fb', /control character/],
    ['s3://bucket/a\u0085b', /control character/],
    ['s3://bucket/a\ud800b', /not valid Unicode/],
    // Quoted by its first 200 characters: the one-line message stays readable.
    [`s3://bucket/${'k'.repeat(1025)}`, /^invalid S3 object key "k{200}"… \(1,025 characters\): .*longer than 1024 bytes/],
    [`s3://bucket/${'é'.repeat(513)}`, /longer than 1024 bytes/],
  ])('rejects %j (%s)', (text, reason) => {
    const error = (() => {
      try {
        parseS3Url(text);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidNameError);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).message).not.toContain('\n');
  });

  // A key read from (restore, verify) may be any key S3 holds, as `tenants backups` lists keys
  // other tools wrote; only what cannot be read as named is refused there.
  it.each([
    ['s3://bucket/dr//acme.tar.zst', 'dr//acme.tar.zst'],
    ['s3://bucket//acme.tar.zst', '/acme.tar.zst'],
    ['s3://bucket/old\\acme.tar.zst', 'old\\acme.tar.zst'],
    ['s3://bucket/a\u0001b', 'a\u0001b'],
  ])('reads %j, which a backup would not write', (text, key) => {
    expect(parseS3Url(text, 'read')).toEqual({ bucket: 'bucket', key });
    expect(() => parseS3Url(text)).toThrow(InvalidNameError);
  });

  it.each([
    ['s3://bucket/', /has no object key/],
    ['s3://bucket/acme/', /ends with "\/"/],
    ['s3://bucket/a/../b', /"\.\." segment/],
    ['s3://bucket/./b', /"\." segment/],
    [`s3://bucket/${'k'.repeat(1025)}`, /longer than 1024 bytes/],
    ['s3://bucket/a\ud800b', /not valid Unicode/],
    ['s3://bucket/acme.tar.zst\u0000', /NUL character/],
    ['s3://bucket/old\\..\\acme.tar.zst', /"\.\." segment/],
    ['s3://Bucket/k', /lowercase/],
  ])('refuses to read %j', (text, reason) => {
    expect(() => parseS3Url(text, 'read')).toThrow(reason);
  });

  it('never echoes credentials written into the URL', () => {
    const text = 's3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/key';
    expect(() => parseS3Url(text)).toThrow(/credentials in S3 URLs are not supported/);
    try {
      parseS3Url(text);
    } catch (error) {
      expect((error as Error).message).not.toContain('wJalrXUtnFEMI');
    }
  });

  it('never echoes a secret key with a "/" in it (as AWS secret keys have) written into the URL', () => {
    for (const access of ['read', 'write'] as const) {
      for (const text of ['s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/key', 's3://AKIAEXAMPLE:wJalr/K7MDENG@bucket/k@ey']) {
        const error = (() => {
          try {
            return parseS3Url(text, access);
          } catch (caught) {
            return caught as Error;
          }
        })() as Error;
        expect(error.message, text).toMatch(/^credentials in S3 URLs are not supported/);
        expect(error.message, text).not.toContain('wJalr');
      }
    }
    // A ":" in the bucket without any "@" is only a bad bucket name, named as such.
    expect(() => parseS3Url('s3://minio:9000/bucket/key')).toThrow(/^invalid S3 bucket name "minio:9000"/);
    // An "@" in the key is a key's.
    expect(parseS3Url('s3://bucket/ops@example.com/x.tar.zst')).toEqual({ bucket: 'bucket', key: 'ops@example.com/x.tar.zst' });
  });
});
