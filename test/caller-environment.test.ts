// The tests run with none of the caller's AWS_ and OPENCLAW_ variables (caller-environment.ts,
// a globalSetup): an operator's exported AWS_PROFILE failed every remote-mode test.

import { describe, expect, it } from 'vitest';

describe("the tests' environment", () => {
  it("holds of AWS_ and OPENCLAW_ variables only those vitest.config.ts sets, none of the caller's", () => {
    expect(Object.keys(process.env).filter((name) => /^(AWS_|OPENCLAW_)/.test(name)).sort()).toEqual([
      'AWS_CONFIG_FILE',
      'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
      'AWS_SHARED_CREDENTIALS_FILE',
      'OPENCLAW_CRONTAB',
      'OPENCLAW_STACK',
    ]);
  });
});
