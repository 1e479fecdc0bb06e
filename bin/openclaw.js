#!/usr/bin/env node
// Entry point installed as `openclaw`: runs the compiled CLI (npm install builds it).
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
