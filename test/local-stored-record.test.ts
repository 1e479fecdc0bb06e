// The record a backup leaves beside a local encrypted archive (verified-mark.ts StoredRecord)
// lies where anyone who can write in the directory can change it: it is parsed as strictly as
// the archive's own marker, whose labels hold no control characters.

import { describe, expect, it } from 'vitest';

import { formatLocalMark, formatLocalStoredRecord, parseLocalMark, parseLocalStoredRecord } from '../shared/storage/verified-mark.js';

const archive = { size: 912, mtimeMs: 1_796_611_226_620.5 };
const record = { tenant: 'acme', createdAt: '2026-12-07T02:40:26.584Z', toolVersion: '0.1.0', formatVersion: 2 };

describe('a local stored record', () => {
  it('reads back as the backup wrote it', () => {
    expect(parseLocalStoredRecord(formatLocalStoredRecord(record, archive), archive)).toEqual(record);
  });

  it('is no record when its tool version holds a control character or is empty', () => {
    for (const toolVersion of ['0.1.0\u001b[31m', '0.1.0\nsecond line', '0.1.0\u0085', '']) {
      expect(parseLocalStoredRecord(formatLocalStoredRecord({ ...record, toolVersion }, archive), archive), JSON.stringify(toolVersion)).toBeUndefined();
    }
  });
});

// The verification's mark replaces the record in the same file: it carries the tool version on (the VERSION column had gone to -).
describe('a local verification mark', () => {
  const mark = { verifiedAt: '2026-12-07T02:41:00.000Z', manifestSha256: 'a'.repeat(64), createdAt: record.createdAt, tenant: 'acme', toolVersion: '0.1.0' };

  it('reads back with the tool version; one written before it carried none reads back without', () => {
    expect(parseLocalMark(formatLocalMark(mark, archive), archive)).toEqual(mark);
    const { toolVersion: _, ...older } = mark;
    expect(parseLocalMark(formatLocalMark(older, archive), archive)).toEqual(older);
  });

  it('leaves out, as written, a tool version no listing would take (a manifest allows longer labels); read, one planted is no mark', () => {
    const { toolVersion: _, ...without } = mark;
    expect(parseLocalMark(formatLocalMark({ ...mark, toolVersion: 'x'.repeat(65) }, archive), archive)).toEqual(without);
    for (const toolVersion of ['0.1.0\u001b[31m', '', 'x'.repeat(65), 7]) {
      const planted = Buffer.from(JSON.stringify({ format: 'openclawmu-verified', ...mark, toolVersion, archiveBytes: archive.size, archiveMtimeMs: archive.mtimeMs }));
      expect(parseLocalMark(planted, archive), JSON.stringify(toolVersion)).toBeUndefined();
    }
  });
});
