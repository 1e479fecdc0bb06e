// The functions as the stack bundles them (infra/backup-functions.ts: one ES module for Node 24,
// the AWS SDK inside, nothing external), a TLS stand-in of SQS answering SendMessage, for
// the tests and benches that run the bundles and hand a restore's next piece back to them, and
// a stand-in of EventBridge recording the completion events they publish.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build, type BuildOptions } from 'esbuild';

import { METAFILE_NAME } from '../../infra/bundle-check.js';
import { S3RVER_ACCESS_KEY } from './s3-server.js';
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

/** A completion event as the stand-in bus received it (its Detail parsed). */
export interface PublishedEvent {
  readonly DetailType: string;
  readonly Detail: Record<string, unknown>;
}

export interface EventBridgeStandIn {
  /** For the functions' AWS_ENDPOINT_URL_EVENTBRIDGE. */
  readonly endpoint: string;
  /** Every entry PutEvents was given, oldest first (the array passed in, if one was). */
  readonly events: PublishedEvent[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering every request as PutEvents, every entry accepted and recorded in `events`. */
export async function startEventBridgeStandIn(events: PublishedEvent[] = []): Promise<EventBridgeStandIn> {
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { Entries } = JSON.parse(body) as { Entries: { DetailType: string; Detail: string }[] };
      events.push(...Entries.map((entry) => ({ DetailType: entry.DetailType, Detail: JSON.parse(entry.Detail) as Record<string, unknown> })));
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ FailedEntryCount: 0, Entries: Entries.map((_, i) => ({ EventId: `e-${events.length}-${i}` })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    events,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Node 24, the functions' runtime: this process when it is one, else OPENCLAW_NODE24 or the project's .tools/node24; undefined: none here. */
export const node24: string | undefined = (() => {
  if (Number(process.versions.node.split('.')[0]) >= 24) return process.execPath;
  const bundled = process.env.OPENCLAW_NODE24 ?? path.join(repoRoot, '.tools', 'node24', 'node_modules', '.bin', 'node');
  return existsSync(bundled) ? bundled : undefined;
})();

/** The environment the stack gives the backup function (no event bus unless `extra` names one), its S3 on `endpoint`, the tenant volume at `tenantsDir`, and the role's keys. */
export function backupFunctionEnvironment(tenantsDir: string, endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENCLAW_TENANTS_DIR: tenantsDir,
    OPENCLAW_BACKUP_BUCKET: 'backups',
    OPENCLAW_ALLOWED_ENDPOINTS: endpoint,
    OPENCLAW_STACK_PREFIX: 'openclaw-backup',
    OPENCLAW_CPUS: '1',
    POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
    AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: 'role-secret',
    AWS_REGION: 'us-east-1',
    ...extra,
  };
}

// One invocation of a bundle's handler: the handler's answer (or what it threw) on the last line of stdout.
const INVOKE_DRIVER = `
const [bundle, event, requestId, remaining, lookMs] = process.argv.slice(2);
const { handler } = await import(bundle);
const deadline = Date.now() + Number(remaining);
let looks = 0;
const context = { awsRequestId: requestId, functionName: 'openclaw-backup-backup', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup', memoryLimitInMB: '2048',
  getRemainingTimeInMillis: () => Math.max(0, lookMs === undefined ? deadline - Date.now() : Number(remaining) - Number(lookMs) * looks++) };
const answer = await handler(JSON.parse(event), context).catch((error) => ({ thrown: error.name, message: error.message }));
process.stdout.write('\\nANSWER ' + JSON.stringify(answer) + '\\n');
`;

export interface SandboxInvocation {
  readonly status: number | null;
  /** SIGKILL when a crash point (OPENCLAW_TEST_CRASH_AT) killed the runtime, as a timeout's reset does. */
  readonly signal: NodeJS.Signals | null;
  readonly answer?: Record<string, unknown>;
  /** All it wrote to stdout: its log lines and metrics (CloudWatch's embedded metric format) beside the answer. */
  readonly stdout: string;
}

/**
 * One invocation of `bundle`'s handler in a fresh Node 24 process, as a Lambda sandbox runs it:
 * `env` is all the process gets besides PATH (a sandbox sees no test's environment); its time left
 * is `remainingMs` in real time, or on the looking clock of `lookMs`. Asynchronous,
 * so that servers in this process (s3rver, stand-ins) go on answering.
 */
export async function invokeInSandbox(
  bundle: string,
  event: unknown,
  options: {
    readonly requestId: string;
    readonly remainingMs?: number;
    /** A clock that moves this much each time the handler asks for its time left, and only then (budgetContext's): where a piece stops does not hang on the machine's load. */
    readonly lookMs?: number;
    readonly env: Record<string, string>;
  },
): Promise<SandboxInvocation> {
  const driver = path.join(path.dirname(bundle), 'invoke.mjs');
  if (!existsSync(driver)) writeFileSync(driver, INVOKE_DRIVER);
  const child = spawn(node24!, [driver, bundle, JSON.stringify(event), options.requestId, String(options.remainingMs ?? 900_000), ...(options.lookMs === undefined ? [] : [String(options.lookMs)])], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, killedBy) => resolve([code, killedBy])));
  const line = stdout.split('\n').find((text) => text.startsWith('ANSWER '));
  return { status, signal, stdout, ...(line !== undefined && { answer: JSON.parse(line.slice('ANSWER '.length)) as Record<string, unknown> }) };
}
