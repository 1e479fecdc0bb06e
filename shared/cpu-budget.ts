// How many CPUs this process may keep busy: what sizes the zstd frames compressed or decoded
// at once and the restore's writer threads. By default what the machine offers
// (os.availableParallelism()). A Lambda function sees more CPUs than it is given time on:
// Lambda shares CPU time in proportion to memory (1,769 MB buys one vCPU's worth) while the
// function sees 2 vCPUs up to 3,008 MB; so the function sets its budget once at cold start
// from what its stack computed (OPENCLAW_CPUS, function-config.ts), and more threads than
// that would only take turns and hold more frames in memory.

import os from 'node:os';

let budget: number | undefined;

/** CPUs this process may keep busy: at least 1. */
export function cpuBudget(): number {
  return budget ?? Math.max(1, os.availableParallelism());
}

/** Sets the budget for the rest of the process (at start-up): at most what the machine offers. */
export function limitCpuBudget(cpus: number): void {
  budget = Math.max(1, Math.min(Math.floor(cpus), os.availableParallelism()));
}
