// Freezes the process tree under the pid given (process-tree.ts freezeTree), says so on its
// standard output, and is killed (SIGKILL) before it can signal and continue it, as a CLI
// killed with kill -9 in the middle of stopping its --pipe command.

import { writeSync } from 'node:fs';

import { freezeTree } from '../../shared/storage/process-tree.js';

const frozen = freezeTree([Number(process.argv[2])]);
writeSync(1, `${frozen.map((member) => member.pid).join(' ')}\n`);
process.kill(process.pid, 'SIGKILL');
