// Endpoint URLs (and CA bundles, and which credentials win) configured outside the command
// line, resolved the way the AWS SDK and CLI resolve them ("service-specific endpoints"): the environment first (AWS_ENDPOINT_URL_<SERVICE>,
// then AWS_ENDPOINT_URL), then the profile's `services` section (`s3 = / endpoint_url = …`),
// then the profile's own `endpoint_url`; none at all when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
// or the profile's `ignore_configured_endpoint_urls` is true.
//
// Why not leave it to the SDK: it reads these for the AWS_PROFILE profile only, never for the
// `profile` given to a client, so `--aws-profile minio` would send a backup to AWS while
// `AWS_PROFILE=minio` sends it to the profile's MinIO. Resolving it here for the profile the
// command names makes the two mean the same, and lets the caller treat a configured
// endpoint like `--endpoint` (path-style requests, checksums only when required) and say
// which endpoint was used and why. The shared config files are read with the SDK's own
// loader (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, `[profile x]` and `[services y]`
// sections), loaded only when an S3 location or a remote command needs it.

import { join } from 'node:path';
import type { SharedConfigFiles } from '@smithy/types';

import { errnoMessage, UsageError } from '../errors.js';

/**
 * The shared config and credentials files, read now (never the SDK's cache: a long-running
 * process, a test or the Lambda, must see edits). Read once per S3 open and handed to the
 * functions below through `files`, instead of once by each.
 */
export async function loadSharedFiles(): Promise<SharedConfigFiles> {
  await assertSharedFilesAreFiles();
  const { loadSharedConfigFiles } = await import('@smithy/core/config');
  return loadSharedConfigFiles({ ignoreCache: true });
}

export interface ConfiguredEndpoint {
  /** The URL as configured (not yet validated). */
  readonly url: string;
  /** Where it came from, for messages and results: `AWS_ENDPOINT_URL_S3`, `profile minio, endpoint_url`… */
  readonly source: string;
}

export interface ConfiguredEndpointOptions {
  /** `--aws-profile`; else AWS_PROFILE, else "default" (as the SDK chooses). */
  readonly profile?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** The shared files as loadSharedFiles read them; read here when absent. */
  readonly files?: SharedConfigFiles;
}

/**
 * The endpoint configured for `serviceId` (the SDK's service id: "S3", "Lambda",
 * "EventBridge", "EFS", "EC2"…), or undefined when none is. A `services` name with no such
 * section falls through to the profile's own `endpoint_url`.
 */
export async function configuredEndpoint(serviceId: string, options: ConfiguredEndpointOptions = {}): Promise<ConfiguredEndpoint | undefined> {
  const env = options.env ?? process.env;
  const { getProfileName, CONFIG_PREFIX_SEPARATOR } = await import('@smithy/core/config');
  const profileName = getProfileName({ ...(options.profile !== undefined && { profile: options.profile }) });
  const { configFile, credentialsFile } = options.files ?? (await loadSharedFiles());
  const profile: Record<string, string | undefined> = { ...credentialsFile[profileName], ...configFile[profileName] };

  const ignore = booleanSetting(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) ?? booleanSetting(profile.ignore_configured_endpoint_urls) ?? false;
  if (ignore) return undefined;

  const suffix = serviceId.split(' ').map((word) => word.toUpperCase()).join('_');
  const serviceVariable = `AWS_ENDPOINT_URL_${suffix}`;
  if (nonEmpty(env[serviceVariable])) return { url: env[serviceVariable]!, source: serviceVariable };
  if (nonEmpty(env.AWS_ENDPOINT_URL)) return { url: env.AWS_ENDPOINT_URL!, source: 'AWS_ENDPOINT_URL' };

  const services = profile.services;
  if (nonEmpty(services)) {
    const section = configFile[['services', services].join(CONFIG_PREFIX_SEPARATOR)];
    const key = [serviceId.split(' ').map((word) => word.toLowerCase()).join('_'), 'endpoint_url'].join(CONFIG_PREFIX_SEPARATOR);
    const url = section?.[key];
    if (nonEmpty(url)) return { url, source: `profile ${profileName}, services ${services}` };
  }
  if (nonEmpty(profile.endpoint_url)) return { url: profile.endpoint_url, source: `profile ${profileName}, endpoint_url` };
  return undefined;
}

/**
 * Refuses a `--aws-profile`, else an AWS_PROFILE, that neither shared file holds. The
 * credentials come from that profile alone, so a mistyped name can never work, and the SDK
 * would only say so later and elsewhere: as a missing region, or as credentials it cannot
 * load. (The AWS CLI refuses such a profile as well.)
 */
export async function assertProfileExists(profile: string | undefined, env: NodeJS.ProcessEnv = process.env, files?: SharedConfigFiles): Promise<void> {
  const named = profile ?? (nonEmpty(env.AWS_PROFILE) ? env.AWS_PROFILE : undefined);
  if (named === undefined) return;
  const { getHomeDir } = await import('@smithy/core/config');
  const { configFile, credentialsFile } = files ?? (await loadSharedFiles());
  if (configFile[named] !== undefined || credentialsFile[named] !== undefined) return;
  // The files the SDK's loader read (@smithy/shared-ini-file-loader).
  const configPath = nonEmpty(env.AWS_CONFIG_FILE) ? env.AWS_CONFIG_FILE : join(getHomeDir(), '.aws', 'config');
  const credentialsPath = nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ? env.AWS_SHARED_CREDENTIALS_FILE : join(getHomeDir(), '.aws', 'credentials');
  const from = profile === undefined ? ' (AWS_PROFILE)' : '';
  // The names they hold, so a typo shows beside the name meant (`[services …]` and
  // `[sso-session …]` sections are no profiles).
  const held = [...new Set([...Object.keys(configFile), ...Object.keys(credentialsFile)])].filter((name) => !/^(?:services|sso-session)\./.test(name)).sort();
  const holding = held.length === 0 ? 'which hold no profile' : `which hold ${held.slice(0, 20).join(', ')}${held.length > 20 ? ', …' : ''}`;
  throw new UsageError(`AWS profile ${JSON.stringify(named)}${from} is in neither shared config file (${configPath}, ${credentialsPath}), ${holding}`);
}

export interface CaBundle {
  /** The PEM certificates, trusted instead of Node's own list (as the AWS CLI does). */
  readonly pem: Buffer;
  /** `AWS_CA_BUNDLE`, or `profile NAME, ca_bundle`. */
  readonly source: string;
}

/**
 * The CA bundle the AWS CLI would trust: AWS_CA_BUNDLE, else the profile's `ca_bundle`
 * (the SDK for JavaScript reads neither), read now; undefined when neither is set. A bundle
 * that cannot be read is a usage error naming where it was set.
 */
export async function configuredCaBundle(options: ConfiguredEndpointOptions = {}): Promise<CaBundle | undefined> {
  const env = options.env ?? process.env;
  let file: string | undefined;
  let source = 'AWS_CA_BUNDLE';
  if (nonEmpty(env.AWS_CA_BUNDLE)) {
    file = env.AWS_CA_BUNDLE;
  } else {
    const { getProfileName } = await import('@smithy/core/config');
    const profileName = getProfileName({ ...(options.profile !== undefined && { profile: options.profile }) });
    const { configFile } = options.files ?? (await loadSharedFiles());
    file = configFile[profileName]?.ca_bundle;
    source = `profile ${profileName}, ca_bundle`;
  }
  if (!nonEmpty(file)) return undefined;
  const pem = await readRegularFile(file).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'a directory' : error.code === 'NOT_A_FILE' ? 'not a regular file' : (errnoMessage(error) ?? error.code ?? error.message);
    throw new UsageError(`cannot read the CA bundle ${JSON.stringify(file)} (from ${source}): ${why}`);
  });
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`the CA bundle ${JSON.stringify(file)} (from ${source}) holds no PEM certificate`);
  return { pem, source };
}

/**
 * The `region` of the profile (`--aws-profile`, else AWS_PROFILE, else "default") in the shared
 * config file, or undefined. For a custom endpoint: the SDK is given a region there (us-east-1
 * when none is configured), which would hide the profile's, so `[profile b2] region =
 * us-west-004` with its `endpoint_url` is read here, as the aws CLI reads it.
 */
export async function profileRegion(options: ConfiguredEndpointOptions = {}): Promise<string | undefined> {
  const { getProfileName } = await import('@smithy/core/config');
  const profileName = getProfileName({ ...(options.profile !== undefined && { profile: options.profile }) });
  const { configFile } = options.files ?? (await loadSharedFiles());
  const region = configFile[profileName]?.region;
  return nonEmpty(region) ? region.trim() : undefined;
}

export interface EnvironmentKeys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/**
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) when AWS_PROFILE is set
 * as well: the keys win, as in the AWS CLI, where only an explicit `--profile` beats them.
 * (The JS SDK's default chain takes the profile instead and prints a multi-line warning.)
 * Undefined otherwise: without AWS_PROFILE the default chain reads the keys itself.
 */
export function environmentKeysOverProfile(env: NodeJS.ProcessEnv = process.env): EnvironmentKeys | undefined {
  // Set at all, as the SDK tests before it warns (AWS_PROFILE=" " too).
  if (!env.AWS_PROFILE || !nonEmpty(env.AWS_ACCESS_KEY_ID) || !nonEmpty(env.AWS_SECRET_ACCESS_KEY)) return undefined;
  return {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    ...(nonEmpty(env.AWS_SESSION_TOKEN) && { sessionToken: env.AWS_SESSION_TOKEN }),
  };
}

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function booleanSetting(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const lower = value.trim().toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : undefined;
}

/**
 * A regular file's bytes. Opened O_NONBLOCK: a FIFO without a writer blocked open(2) for good on
 * a thread no signal reaches (the CLI hung, SIGTERM included); anything but a file is refused.
 */
async function readRegularFile(file: string): Promise<Buffer> {
  const { constants } = await import('node:fs');
  const { open } = await import('node:fs/promises');
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'NOT_A_FILE' });
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * The SDK reads the shared config and credentials files with a blocking open(2): a FIFO there
 * (AWS_CONFIG_FILE=fifo) without a writer hung the CLI for good, SIGTERM included. stat does not
 * open: a FIFO at those paths is refused first, in one line (a device, /dev/null, reads as before).
 */
async function assertSharedFilesAreFiles(): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const { homedir } = await import('node:os');
  const home = (given: string) => (given.startsWith('~/') ? join(homedir(), given.slice(2)) : given);
  const files = [
    ['AWS_CONFIG_FILE', home(process.env.AWS_CONFIG_FILE || join(homedir(), '.aws', 'config'))],
    ['AWS_SHARED_CREDENTIALS_FILE', home(process.env.AWS_SHARED_CREDENTIALS_FILE || join(homedir(), '.aws', 'credentials'))],
  ] as const;
  for (const [variable, file] of files) {
    const info = await stat(file).catch(() => undefined);
    if (info?.isFIFO() === true) throw new UsageError(`the AWS shared file ${JSON.stringify(file)} (${variable} or its default) is a FIFO: give a regular file`);
  }
}
