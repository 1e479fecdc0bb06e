// The benchmark's local S3-compatible server: s3rver on 127.0.0.1 in a process of its own
// (so its CPU and memory are not the benchmark driver's), storing objects under a directory.
// Started by s3.ts as `node --import tsx bench/s3-server.ts DIR BUCKET`; prints its port on
// stdout once listening and stops when its stdin closes (the driver exited) or on SIGTERM.
// s3rver accepts only the access key id "S3RVER" (signatures are not verified).

import { createRequire } from 'node:module';
import type { Server } from 'node:http';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
  logger: { close(): void };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

const [directory, bucket] = process.argv.slice(2);
if (directory === undefined || bucket === undefined) {
  process.stderr.write('usage: s3-server.ts DIR BUCKET\n');
  process.exit(2);
}

const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
server.logger.close = () => {};
const { port } = await server.run();
process.stdout.write(`${port}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const closing = server.close();
  server.httpServer?.closeAllConnections();
  await closing.catch(() => undefined);
  process.exit(0);
}
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
