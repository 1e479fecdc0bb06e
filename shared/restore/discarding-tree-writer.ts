// The TreeWriter of `tenants verify` and of a restore's dry run: takes every call a restore
// would make and creates nothing. extract.ts keeps what it has created in memory and never
// reads the file system back, so its checks (names, links, limits, digests against the
// manifest) run exactly as they do for a restore; only the file system's own refusals (a full
// disk, a name it folds) cannot happen here. A file's size is counted, as `FileSink` promises.

import type { FileSink, TreeWriter } from './tree-writer.js';

export class DiscardingTreeWriter implements TreeWriter {
  readonly readsChunksLater = false;
  beginChunk(): void {}
  endChunk(): undefined {
    return undefined;
  }
  mkdir(): undefined {
    return undefined;
  }
  openFile(): FileSink {
    return new DiscardingFileSink();
  }
  symlink(): undefined {
    return undefined;
  }
  link(): undefined {
    return undefined;
  }
  async flush(): Promise<void> {}
  async settle(): Promise<void> {}
  setAttributes(): undefined {
    return undefined;
  }
}

class DiscardingFileSink implements FileSink {
  size = 0;
  write(bytes: Buffer): undefined {
    this.size += bytes.length;
    return undefined;
  }
  finish(): undefined {
    return undefined;
  }
  abandon(): undefined {
    return undefined;
  }
}
