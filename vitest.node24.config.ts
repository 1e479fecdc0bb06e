import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';

import base from './vitest.config.js';

// `npm run test:node24` (scripts/test-node24.mjs): the suite under Node 24, the Lambda
// functions' runtime, where the core uses Node's own zstd and SQLite instead of the optional
// native packages. All of it but test/infra-*: the CDK app runs on the deployer's machine
// (Node 20 here), and is tested there by `npm test`.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, 'test/infra-*.test.ts'],
    },
  }),
);
