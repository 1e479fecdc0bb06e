// A backup that cannot read its tenant (a file or directory it may not read, an I/O error)
// fails with one line that names the tenant, the reason and the path, not "unexpected error".

import { describe, expect, it } from 'vitest';

import { backupReadError } from '../shared/backup/backup.js';
import { describeError, FileSystemError, StorageError } from '../shared/errors.js';

function errno(code: string, message: string, extra: Partial<NodeJS.ErrnoException> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, ...extra });
}

describe('backupReadError', () => {
  it('names the tenant, the reason and the path of a file it may not read, and keeps the system error as its cause', () => {
    const cause = errno('EACCES', "EACCES: permission denied, open '/srv/tenants/acme/config.json'", { path: '/srv/tenants/acme/config.json', syscall: 'open' });
    const error = backupReadError(cause, 'acme');
    expect(error).toBeInstanceOf(FileSystemError);
    expect(describeError(error)).toBe('cannot back up tenant "acme": permission denied (/srv/tenants/acme/config.json)');
    expect((error as Error).cause).toBe(cause);
  });

  it('names the call when the error has no path (a read on an open file)', () => {
    const error = backupReadError(errno('EIO', 'EIO: i/o error, read', { syscall: 'read' }), 'acme');
    expect(describeError(error)).toBe('cannot back up tenant "acme": input/output error (read)');
  });

  it('passes our own errors and unknown system errors through unchanged', () => {
    const ours = new StorageError('cannot write /backups/acme.tar.zst: no space left on the device', 'NO_SPACE');
    expect(backupReadError(ours, 'acme')).toBe(ours);
    const odd = errno('EWEIRD', 'EWEIRD: something else');
    expect(backupReadError(odd, 'acme')).toBe(odd);
  });
});
