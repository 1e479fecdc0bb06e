// Starts and talks to the benchmark's local S3 server (s3-server.ts, a child process).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The SDK is imported only when the S3 row runs (it is slow to load, and warns on Node 20).

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER-secret';
export const S3_BUCKET = 'bench';

export interface BenchS3 {
  readonly endpoint: string;
  readonly bucket: string;
  /** Environment for the aws CLI: dummy credentials, no IMDS, no pager. */
  readonly awsEnv: NodeJS.ProcessEnv;
  /** Size of an object, or undefined if it does not exist. */
  size(key: string): Promise<number | undefined>;
  remove(key: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3(directory: string): Promise<BenchS3> {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  const script = fileURLToPath(new URL('./s3-server.ts', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, directory, S3_BUCKET], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: path.dirname(path.dirname(script)),
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = text.split('\n')[0];
      if (text.includes('\n') && line !== undefined) resolve(Number(line));
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`s3 server exited early (${code})`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { DeleteObjectCommand, HeadObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    bucket: S3_BUCKET,
    awsEnv: {
      ...process.env,
      AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    },
    async size(key) {
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: S3_BUCKET, Key: key }));
        return head.ContentLength;
      } catch {
        return undefined;
      }
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket: S3_BUCKET, Key: key })).catch(() => undefined);
    },
    async stop() {
      client.destroy();
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
