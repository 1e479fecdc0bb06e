// The record a backup leaves beside a local encrypted archive (verified-mark.ts StoredRecord)
// lies where anyone who can write in the directory can change it: it is parsed as strictly as
// the archive's own marker, whose labels hold no control characters.

import { describe, expect, it } from 'vitest';

import { formatLocalStoredRecord, parseLocalStoredRecord } from '../shared/storage/verified-mark.js';

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
