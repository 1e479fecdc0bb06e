// Table tests of the name rules (shared/tenant/names.ts): tenant names, `--as` values and archive
// entry names. Every invalid case names the reason it is refused.

import { describe, expect, it } from 'vitest';

import { InvalidNameError, UnsafeArchiveError } from '../shared/errors.js';
import { assertTenantName, entryNameFor, isValidTenantName, parseEntryName } from '../shared/tenant/names.js';

describe('assertTenantName', () => {
  it.each([
    ['a', 'one character'],
    ['0', 'a digit first'],
    ['acme', 'plain'],
    ['acme-2', 'hyphen'],
    ['acme_2', 'underscore'],
    ['a'.repeat(32), '32 characters (the maximum)'],
    ['0-_9', 'digits, hyphen, underscore'],
  ])('accepts %j (%s)', (name) => {
    expect(assertTenantName(name)).toBe(name);
    expect(isValidTenantName(name)).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['a'.repeat(33), '33 characters'],
    ['A', 'uppercase'],
    ['Acme', 'uppercase first'],
    ['..', 'parent directory'],
    ['.', 'current directory'],
    ['.hidden', 'leading dot (staging and journal names start with one)'],
    ['a/b', 'slash'],
    ['a\\b', 'backslash'],
    ['/acme', 'absolute'],
    ['-acme', 'leading hyphen (looks like a flag)'],
    ['_acme', 'leading underscore'],
    ['a b', 'space'],
    ['acme\n', 'trailing newline ($ must not match before it)'],
    ['acme\u0000', 'NUL'],
    ['acmé', 'non-ASCII letter'],
    ['ａcme', 'fullwidth letter'],
    ['a.b', 'dot inside'],
    ['C:', 'drive letter'],
  ])('refuses %j (%s)', (name) => {
    expect(isValidTenantName(name)).toBe(false);
    expect(() => assertTenantName(name)).toThrow(InvalidNameError);
  });

  it('names the source and the offending value in the message', () => {
    expect(() => assertTenantName('A', '--as name')).toThrow(/invalid --as name "A"/);
  });

  it('names the lowercase name to write for one in capitals, and the rule for anything else', () => {
    expect(() => assertTenantName('ACME')).toThrow(/^invalid tenant name "ACME": tenant names are lowercase: write "acme"$/);
    expect(() => assertTenantName('Acme-Staging', '--as name')).toThrow(/^invalid --as name "Acme-Staging": tenant names are lowercase: write "acme-staging"$/);
    expect(() => assertTenantName('Acme.old')).toThrow(/^invalid tenant name "Acme.old": must match /);
  });

  it('quotes the first 64 characters of a long name, and says how long it is', () => {
    const name = `${'x'.repeat(64)}${'y'.repeat(100_000)}`;
    let message = '';
    try {
      assertTenantName(name);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid tenant name "x{64}"… \(100064 characters\): must match /);
    expect(message.length).toBeLessThan(300);
  });

  it.each([
    ['..', 'parent directory'],
    ['a/b', 'nested path'],
    ['A', 'uppercase'],
    ['a'.repeat(33), '33 characters'],
    ['', 'empty'],
  ])('refuses --as %j (%s) as a usage error', (name) => {
    let caught: unknown;
    try {
      assertTenantName(name, '--as name');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidNameError);
    expect((caught as InvalidNameError).code).toBe('INVALID_NAME');
    expect((caught as InvalidNameError).outcome).toBe('usage');
    expect((caught as Error).message).toContain('--as name');
  });
});

describe('parseEntryName', () => {
  it.each([
    ['tenants/acme', 'acme', []],
    ['tenants/acme/', 'acme', []],
    ['tenants/acme/x', 'acme', ['x']],
    ['tenants/acme/a/b/c.txt', 'acme', ['a', 'b', 'c.txt']],
    ['tenants/acme/dir/', 'acme', ['dir']],
    ['./tenants/acme/x', 'acme', ['x']],
    ['././tenants/acme/x', 'acme', ['x']],
    ['tenants/acme/...', 'acme', ['...']],
    ['tenants/acme/..a', 'acme', ['..a']],
    ['tenants/acme/a..', 'acme', ['a..']],
    ['tenants/acme/.hidden', 'acme', ['.hidden']],
    ['tenants/acme/café', 'acme', ['café']],
    ['tenants/acme/a:b', 'acme', ['a:b']],
    ['tenants/acme/C:', 'acme', ['C:']],
    ['tenants/acme/ x ', 'acme', [' x ']],
    ['tenants/acme/\u2024\u2024', 'acme', ['\u2024\u2024']],
    // A backslash or a control character is an ordinary character of a Linux name.
    ['tenants/acme/a\\b', 'acme', ['a\\b']],
    ['tenants/acme/..\\..\\x', 'acme', ['..\\..\\x']],
    ['tenants/acme/\\', 'acme', ['\\']],
    ['tenants/acme/a\nb', 'acme', ['a\nb']],
    ['tenants/acme/a\rb/tab\there', 'acme', ['a\rb', 'tab\there']],
    ['tenants/acme/\u001b[31mred', 'acme', ['\u001b[31mred']],
    ['tenants/acme/del\u007f', 'acme', ['del\u007f']],
    ['tenants/acme/c1\u0085', 'acme', ['c1\u0085']],
  ])('accepts %j', (name, tenant, segments) => {
    expect(parseEntryName(name)).toEqual({ tenant, segments });
  });

  it.each([
    ['', /empty name/],
    ['etc/passwd', /outside tenants/],
    ['tenants', /outside tenants/],
    ['tenants/', /outside tenants/],
    ['tenant/acme/x', /outside tenants/],
    ['Tenants/acme/x', /outside tenants/],
    ['x/tenants/acme/x', /outside tenants/],
    ['tenants/ACME/x', /invalid tenant name/],
    ['tenants/a b/x', /invalid tenant name/],
    ['tenants/.openclaw-staging-acme-1/x', /invalid tenant name/],
    [`tenants/${'a'.repeat(33)}/x`, /invalid tenant name/],
    ['tenants/../x', /"\.\." segment/],
    ['tenants/acme/../evil/x', /"\.\." segment/],
    ['tenants/acme/a/../../x', /"\.\." segment/],
    ['tenants/acme/..', /"\.\." segment/],
    ['tenants/acme/x/..', /"\.\." segment/],
    ['../tenants/acme/x', /"\.\." segment/],
    ['./../tenants/acme/x', /"\.\." segment/],
    ['tenants/acme/./x', /empty or "\." segment/],
    ['tenants/acme/.', /empty or "\." segment/],
    ['tenants//acme/x', /empty or "\." segment/],
    ['tenants/acme//x', /empty or "\." segment/],
    ['tenants/acme/x//', /empty or "\." segment/],
    ['.//tenants/acme/x', /empty or "\." segment/],
    ['.', /empty or "\." segment/],
    ['/tmp/x', /absolute path/],
    ['/tenants/acme/x', /absolute path/],
    ['////tmp/x', /absolute path/],
    ['tenants\\acme\\x', /outside tenants/],
    ['\\\\server\\share\\x', /outside tenants/],
    ['tenants/acme\\x', /invalid tenant name/],
    ['tenants/acme\n/x', /invalid tenant name/],
    ['C:/x', /drive-letter/],
    ['c:../x', /drive-letter/],
    ['C:tenants/acme/x', /drive-letter/],
    ['z:', /drive-letter/],
    ['tenants/acme/a\u0000b', /NUL character/],
    ['tenants/acme\u0000/x', /NUL character/],
    ['tenants/acme/x\u0000/../../y', /NUL character/],
  ])('refuses %j (%s)', (name, reason) => {
    let caught: unknown;
    try {
      parseEntryName(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnsafeArchiveError);
    expect((caught as UnsafeArchiveError).code).toBe('UNSAFE_ARCHIVE');
    expect((caught as Error).message).toMatch(reason);
  });

  it('round-trips entryNameFor', () => {
    expect(parseEntryName(entryNameFor('acme', ''))).toEqual({ tenant: 'acme', segments: [] });
    expect(parseEntryName(entryNameFor('acme', 'a/b'))).toEqual({ tenant: 'acme', segments: ['a', 'b'] });
  });
});

describe('parseEntryName length limits', () => {
  it('refuses a path component longer than 255 bytes and a name longer than 4095 bytes', () => {
    expect(() => parseEntryName(`tenants/acme/${'x'.repeat(256)}`)).toThrow(/component longer than 255 bytes/);
    expect(() => parseEntryName(`tenants/acme/${'é'.repeat(128)}`)).toThrow(/component longer than 255 bytes/);
    expect(parseEntryName(`tenants/acme/${'x'.repeat(255)}`).segments).toEqual(['x'.repeat(255)]);
    expect(() => parseEntryName(`tenants/acme/${`${'d'.repeat(200)}/`.repeat(21)}f`)).toThrow(/longer than 4095 bytes/);
  });

  it('measures the path itself: the trailing slash of a directory entry does not count', () => {
    const path = `tenants/acme/${`${'d'.repeat(200)}/`.repeat(20)}${'e'.repeat(4095 - 13 - 201 * 20)}`;
    expect(Buffer.byteLength(path)).toBe(4095);
    expect(parseEntryName(`${path}/`).segments).toHaveLength(21);
    expect(() => parseEntryName(`${path}e/`)).toThrow(/longer than 4095 bytes/);
  });

  it('quotes a name escaped, and a name longer than PATH_MAX by its start and length', () => {
    expect(() => parseEntryName('/a\nb\u001b[2J\\"')).toThrow('entry with an absolute path: "/a\\nb\\u001b[2J\\\\\\""');
    const long = `tenants/acme/${'x/'.repeat(3000)}`;
    expect(() => parseEntryName(long)).toThrow(`entry name longer than 4095 bytes: "tenants/acme/${'x/'.repeat(43)}x… (6,013 bytes)"`);
  });
});
