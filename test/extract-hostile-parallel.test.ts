// The hostile-archive suite again, with files written as on a network file system (EFS):
// many promise calls in flight (parallel-tree-writer.ts).

process.env.OPENCLAW_HOSTILE_OPTIONS = JSON.stringify({ fileAccess: 'parallel' });
await import('./extract-hostile.test.js');
