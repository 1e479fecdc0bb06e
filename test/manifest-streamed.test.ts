import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, parseManifest } from '../shared/archive/manifest.js';

const SHA = 'ab'.repeat(32);

/** What parseManifest gives or the message it refuses with, the directories as an array. */
function outcome(bytes: Buffer): unknown {
  try {
    const manifest = parseManifest(bytes);
    return { manifest: { ...manifest, directories: [...manifest.directories] } };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

/**
 * The same JSON with a `directories` key put first: JSON.parse keeps the last of a key given
 * twice, so it means the same, and parseManifest parses it whole, as it did every manifest.
 */
function parsedWhole(text: string): unknown {
  const brace = text.indexOf('{');
  return outcome(Buffer.from(`${text.slice(0, brace)}{"directories":0,${text.slice(brace + 1)}`));
}

const space = fc.constantFrom('', ' ', '\n', '\t', '\r\n  ');
/** A string written as JSON.stringify would, or with some characters escaped (\u, \/, surrogate pairs). */
const jsonString = (value: fc.Arbitrary<string>) =>
  fc.tuple(value, fc.boolean()).map(([text, escaped]) =>
    escaped
      ? `"${[...text].map((c) => (c === '"' || c === '\\' || c < ' ' ? JSON.stringify(c).slice(1, -1) : c === '/' ? '\\/' : c.charCodeAt(0) > 0x7e ? [...c].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('') : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('')}"`
      : JSON.stringify(text),
  );
const key = (name: string) => fc.constantFrom(JSON.stringify(name), `"${name.replace(/./, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`);
const path = fc.oneof(fc.constantFrom('', 'a', 'a/b', 'pty', 'pty/x', 'é', '\u{1F600}', 'a"b', 'a\\b', 'x\u0000y', 'directories', '[', ']', ',', '{'), fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }));
const number = fc.constantFrom('0', '1', '7', '-1', '1.5', '1e3', '1E+2', '123456789012345678901234567890', '9007199254740993', '2e400', '0.0', '-0');
const value: fc.Arbitrary<string> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, number, jsonString(path), fc.constantFrom('true', 'null', '[]', '{}'), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
  object: fc.array(fc.tuple(jsonString(fc.constantFrom('path', 'x', 'directories', '__proto__')), tie('value')), { maxLength: 3 }).map((fields) => `{${fields.map(([k, v]) => `${k}:${v}`).join(',')}}`),
})).value as fc.Arbitrary<string>;

/** A directory as a backup writes it, or with fields reordered, repeated, added or of another type. */
const directory = fc
  .tuple(
    fc.tuple(key('path'), jsonString(path)),
    fc.tuple(key('entries'), fc.oneof(fc.constantFrom('0', '3', '12'), number)),
    fc.tuple(key('sha256'), fc.constantFrom(JSON.stringify(SHA), JSON.stringify('AB'.repeat(32)), '"x"', '1')),
    fc.array(fc.tuple(fc.oneof(key('path'), key('entries'), key('extra'), key('sha256')), value), { maxLength: 2 }),
    space,
    fc.boolean(),
  )
  .map(([p, e, h, more, ws, reversed]) => {
    const fields = [p, e, h, ...more].map(([k, v]) => `${ws}${k}${ws}:${ws}${v}${ws}`);
    return `{${(reversed ? fields.reverse() : fields).join(',')}}`;
  });

const manifestText = fc
  .tuple(fc.array(fc.oneof({ weight: 8, arbitrary: directory }, { weight: 1, arbitrary: value }), { maxLength: 8 }), space, key('directories'), fc.constantFrom('head', 'middle', 'end', 'twice'), fc.boolean())
  .map(([directories, ws, directoriesKey, where, v1]) => {
    const array = `[${ws}${directories.join(`${ws},${ws}`)}${ws}]`;
    const fields = [
      `"format":${JSON.stringify(MANIFEST_FORMAT)}`,
      `"formatVersion":${v1 ? 1 : MANIFEST_FORMAT_VERSION}`,
      '"tenant":"acme"',
      '"createdAt":"2026-12-06T13:00:00.000Z"',
      '"tool":{"name":"openclaw","version":"0.1.0"}',
      `"totals":{"files":0,"directories":${directories.length},"symlinks":0,"bytes":0}`,
      '"skipped":[]',
      '"warnings":[{"path":"a","reason":"directories: [\\"x\\"]"}]',
    ];
    const listed = `${directoriesKey}${ws}:${ws}${array}`;
    if (where === 'head') fields.unshift(listed);
    else if (where === 'middle') fields.splice(4, 0, listed);
    else if (where === 'end') fields.push(listed);
    else fields.splice(2, 0, listed, `"directories":[${directories.slice(1).join(',')}]`);
    return { text: `${ws}{${ws}${fields.join(`${ws},${ws}`)}${ws}}${ws}`, listedOnce: where !== 'twice' && !v1 };
  });

describe('a manifest whose directories are read from its bytes', () => {
  it('is what parsing it whole gives, or refused with the same message', () => {
    fc.assert(
      fc.property(manifestText, ({ text, listedOnce }) => {
        expect(outcome(Buffer.from(text))).toEqual(parsedWhole(text));
        // Accepted, a version 2 manifest that gives `directories` once keeps them in its bytes, not in an array.
        const accepted = outcome(Buffer.from(text)) as { manifest?: unknown };
        if (accepted.manifest !== undefined && listedOnce) expect(Array.isArray(parseManifest(Buffer.from(text)).directories)).toBe(false);
      }),
      { numRuns: 3000, seed: 20261206 },
    );
  });

  it('is what parsing it whole gives with any of its bytes changed, cut or repeated', () => {
    const structural = fc.constantFrom(...'{}[],:"\\ 0aé'.split(''), '\\u', '\u00ff', '\udc00');
    fc.assert(
      fc.property(manifestText.map(({ text }) => text), fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.oneof(structural, fc.string({ maxLength: 2 }))), { minLength: 1, maxLength: 3 }), (text, edits) => {
        let bytes = Buffer.from(text);
        for (const [at, cut, put] of edits) {
          const i = 1 + (at % Math.max(1, bytes.length - 1));
          bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from(put), bytes.subarray(i + cut)]);
        }
        if (bytes[0] !== 0x7b) return;
        const whole = Buffer.concat([Buffer.from('{"directories":0,'), bytes.subarray(1)]);
        expect(outcome(bytes)).toEqual(outcome(whole));
      }),
      { numRuns: 3000, seed: 20261207 },
    );
  });

  it('reads bytes that are not UTF-8 as parsing them whole does', () => {
    const manifest = (path: Buffer) =>
      Buffer.concat([
        Buffer.from(`{"format":"${MANIFEST_FORMAT}","formatVersion":2,"tenant":"acme","createdAt":"2026-12-06T13:00:00.000Z","tool":{"name":"o","version":"1"},"totals":{"files":0,"directories":1,"symlinks":0,"bytes":0},"directories":[{"path":"`),
        path,
        Buffer.from(`","entries":0,"sha256":"${SHA}"}],"skipped":[],"warnings":[]}`),
      ]);
    for (const path of [Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0xff, 0x61]), Buffer.from([0xf0, 0x9f, 0x98])]) {
      const bytes = manifest(path);
      const read = outcome(bytes) as { manifest: { directories: { path: string }[] } };
      expect(read).toEqual(outcome(Buffer.concat([Buffer.from('{"directories":0,'), bytes.subarray(1)])));
      expect(read.manifest.directories[0]!.path).toBe(path.toString('utf8'));
    }
  });

  it('reads a directory as a backup writes it, or a few bytes off it, as parsing it whole does', () => {
    const head = `{"format":"${MANIFEST_FORMAT}","formatVersion":2,"tenant":"acme","createdAt":"2026-12-06T13:00:00.000Z","tool":{"name":"o","version":"1"},"totals":{"files":0,"directories":1,"symlinks":0,"bytes":0},"directories":[`;
    const tail = '],"skipped":[],"warnings":[]}';
    const pathByte = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) }, fc.integer({ min: 0, max: 0xff }), fc.constantFrom(0x22, 0x5c, 0x2c, 0x5d, 0x7d, 0x0a, 0x7f, 0xc3, 0xed, 0xa0, 0xf4, 0x90));
    const entries = fc.oneof(fc.nat().map(String), fc.constantFrom('0', '00', '01', '-0', '-1', '1.0', '1e2', ' 1', '999999999999999', '9999999999999999', '9007199254740991', '9007199254740993', '123456789012345678901234567890', ''));
    const hex = fc.oneof(fc.constant('ab'.repeat(32)), fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9a-gA-F]{63,65}$/), fc.tuple(fc.nat(63), fc.constantFrom('g', 'A', 'F', '/', ':', '`', '@', '"')).map(([at, c]) => `${'0f'.repeat(32).slice(0, at)}${c}${'0f'.repeat(32).slice(at + 1)}`));
    const close = fc.oneof({ weight: 8, arbitrary: fc.constant('"}') }, fc.constantFrom('}', 'a}', '0}', '" }', '"}}', '"', '""}', '"]', '"]}'));
    const written = fc
      .tuple(fc.uint8Array({ maxLength: 12 }).chain((b) => fc.array(pathByte, { maxLength: 12 }).map((p) => Buffer.from([...b.slice(0, 2), ...p]))), entries, hex, close)
      .map(([path, n, h, end]) => Buffer.concat([Buffer.from('{"path":"'), path, Buffer.from(`","entries":${n},"sha256":"${h}${end}`)]));
    const edit = fc.tuple(fc.nat(), fc.nat(2), fc.constantFrom('', '"', '\\', ',', ' ', '}', '{', ']', '0', 'a', 'A', '\u00a0', '\v', '"x":1,', ',"x":1'));
    fc.assert(
      fc.property(fc.array(written, { minLength: 1, maxLength: 3 }), fc.array(edit, { maxLength: 2 }), (directories, edits) => {
        let array = Buffer.from(directories.map((d) => d.toString('latin1')).join(','), 'latin1');
        for (const [at, cut, put] of edits) {
          const i = at % (array.length + 1);
          array = Buffer.concat([array.subarray(0, i), Buffer.from(put), array.subarray(i + cut)]);
        }
        const bytes = Buffer.concat([Buffer.from(head), array, Buffer.from(tail)]);
        expect(outcome(bytes)).toEqual(outcome(Buffer.concat([Buffer.from('{"directories":0,'), bytes.subarray(1)])));
      }),
      { numRuns: 12000, seed: 20261208 },
    );
  });

  it('reads the directories of a manifest as a backup writes it without parsing each as JSON', () => {
    const directories = Array.from({ length: 2000 }, (_, i) => ({ path: i === 0 ? '' : `d${i % 10}/é${i}`, entries: i % 7, sha256: SHA }));
    const bytes = Buffer.from(
      JSON.stringify({ format: MANIFEST_FORMAT, formatVersion: 2, tenant: 'acme', createdAt: '2026-12-06T13:00:00.000Z', tool: { name: 'o', version: '1' }, directories, skipped: [], warnings: [], totals: { files: 0, directories: 2000, symlinks: 0, bytes: 0 } }),
    );
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const manifest = parseManifest(bytes);
      expect([...manifest.directories]).toEqual(directories);
      expect([...manifest.directories]).toEqual(directories);
      expect(parse.mock.calls.length).toBeLessThan(20);
    } finally {
      parse.mockRestore();
    }
  });
});
