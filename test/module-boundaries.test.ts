// The import rules of the layout (README "Layout"): the core imports nothing outside
// itself; the CLI and the Lambda handlers are adapters over the core and do not import each
// other; infra takes from the core only the control plane's contract.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from './helpers/tree.js';

function sources(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(repoRoot, path.join(entry.parentPath, entry.name)));
}

/** The repository paths `file` imports (static and dynamic), relative ones only. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), specifier)));
}

function offenders(dir: string, allowed: (target: string) => boolean): string[] {
  return sources(dir).flatMap((file) => importsOf(file).filter((target) => !allowed(target)).map((target) => `${file} -> ${target}`));
}

describe('module boundaries', () => {
  it('the core (shared/) imports only itself', () => {
    expect(offenders('shared', (target) => target.startsWith('shared/'))).toEqual([]);
  });

  it('the CLI imports the core and itself, not the functions or infra', () => {
    expect(offenders('cli', (target) => target.startsWith('cli/') || target.startsWith('shared/'))).toEqual([]);
  });

  it('the functions import the core and themselves, not the CLI or infra', () => {
    expect(offenders('functions', (target) => target.startsWith('functions/') || target.startsWith('shared/'))).toEqual([]);
  });

  it('infra takes from the core only the control plane\'s deployment contract: its names and the endpoint allowlist\'s entries', () => {
    const contract = ['shared/control-plane/deployment.js', 'shared/control-plane/endpoint-allowlist.js'];
    expect(offenders('infra', (target) => target.startsWith('infra/') || contract.includes(target) || !target.startsWith('shared/') && !target.startsWith('cli/') && !target.startsWith('functions/'))).toEqual([]);
  });
});
