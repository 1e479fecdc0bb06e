// Runs the CLI's `main` in this process (so aws-sdk-client-mock mocks apply), capturing what
// it writes to stdout and stderr.

import { vi } from 'vitest';

import { main } from '../../cli/main.js';

export async function runMain(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    return { status: await main(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/**
 * The environment of an operator's CLI in remote mode against mocked AWS clients: no stack
 * name from the environment, a region and made-up keys (the mocks never check them). Call in
 * a beforeEach, with `vi.unstubAllEnvs()` after each test.
 */
export function stubRemoteCaller(): void {
  vi.stubEnv('OPENCLAW_STACK', '');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'not-used-by-mocks');
}
