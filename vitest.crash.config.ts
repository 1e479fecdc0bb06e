import { defineConfig } from 'vitest/config';

// The fault-injection suite (`npm run test:crash`): real CLI processes killed at every
// crash point, under strace, and on full tmpfs mounts. Kept apart from `npm test`.
export default defineConfig({
  test: {
    include: ['test/crash/**/*.crash.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/helpers/run-temp-dir.ts', 'test/helpers/caller-environment.ts'],
    // OPENCLAW_STACK: '' is local mode; an operator's own, exported as the README says, sent
    // every command a test runs to that gateway (all of dry-run.test.ts failed).
    // OPENCLAW_CRONTAB: no test may reach the user's real crontab by accident (`cron add`
    // without --stack); tests that want one give their own stand-in, or '' inside a private
    // mount namespace (cron-local.test.ts). TSX_DISABLE_CACHE: a child run through tsx would
    // otherwise leave tsx's cache in /tmp.
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      OPENCLAW_STACK: '',
      OPENCLAW_CRONTAB: '/nonexistent/tests-never-use-the-real-crontab',
      // Nor the shared files of the caller's home (a [default] region or endpoint_url there).
      AWS_CONFIG_FILE: '/nonexistent/tests-never-read-the-callers-aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/tests-never-read-the-callers-aws-credentials',
      TSX_DISABLE_CACHE: '1',
    },
  },
});
