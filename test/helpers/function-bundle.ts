// The functions as the stack bundles them (infra/backup-functions.ts: one ES module for Node 24,
// the AWS SDK inside, nothing external), and a TLS stand-in of SQS answering SendMessage, for
// the tests and benches that run the bundles and hand a restore's next piece back to them.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build, type BuildOptions } from 'esbuild';

import { METAFILE_NAME } from '../../infra/bundle-check.js';
import { repoRoot } from './tree.js';

const bundleOptions = (name: string, outfile: string) =>
  ({
    entryPoints: [path.join(repoRoot, 'functions', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire as __openclawCreateRequire } from 'node:module'; const require = __openclawCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'silent',
  }) satisfies BuildOptions;

/** Bundles functions/`name`.ts into `outdir` (index.mjs and the metafile the bundle check reads); returns index.mjs's path. */
export async function bundleFunction(name: string, outdir: string): Promise<string> {
  mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, 'index.mjs');
  const result = await build(bundleOptions(name, outfile));
  writeFileSync(path.join(outdir, METAFILE_NAME), JSON.stringify(result.metafile));
  return outfile;
}

/**
 * The source files whose code functions/`name`.ts's bundle carries (esbuild's metafile: the
 * output's inputs, those tree-shaking left code of), as paths from the repository root
 * (`shared/…`, `functions/…`) or from the package (`@aws-sdk/client-s3/dist-es/…`). Nothing is written.
 */
export async function bundledInputs(name: string): Promise<string[]> {
  const result = await build({ ...bundleOptions(name, path.join(repoRoot, 'index.mjs')), write: false });
  const inputs = Object.values(result.metafile.outputs).flatMap((output) => Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0).map(([file]) => file));
  return inputs.map((file) => (file.includes('node_modules/') ? file.slice(file.lastIndexOf('node_modules/') + 'node_modules/'.length) : path.relative(repoRoot, path.resolve(file)))).sort();
}

export interface SqsStandIn {
  readonly server: Server;
  /** The restore queue's URL on the stand-in (the SDK sends to the queue URL's own host). */
  readonly queueUrl: string;
  /** The bodies SendMessage was given, oldest first. */
  readonly sent: string[];
  close(): Promise<void>;
}

/** An HTTPS server on 127.0.0.1 with a self-signed certificate made in `certsDir`, answering every request as SendMessage. */
export async function startSqsStandIn(certsDir: string): Promise<SqsStandIn> {
  mkdirSync(certsDir, { recursive: true });
  const key = path.join(certsDir, 'key.pem');
  const cert = path.join(certsDir, 'cert.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  const sent: string[] = [];
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { MessageBody } = JSON.parse(body) as { MessageBody: string };
      sent.push(MessageBody);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify({ MessageId: `m-${sent.length}`, MD5OfMessageBody: createHash('md5').update(MessageBody).digest('hex') }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    queueUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}/123456789012/openclaw-backup-restore-work`,
    sent,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
