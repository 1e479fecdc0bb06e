// The hostile-archive suite again, with files written by the worker thread from the first
// entry on (choose-tree-writer.ts), as large restores on local disks write them.

process.env.OPENCLAW_HOSTILE_OPTIONS = JSON.stringify({ workerThresholdBytes: 0 });
await import('./extract-hostile.test.js');
