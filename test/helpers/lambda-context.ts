// A Lambda context for calling the handlers in-process (functions/lambda-context.ts): made-up
// fields a test may override, and the time left, fixed or asked at each look.

import type { LambdaContext } from '../../functions/lambda-context.js';

/**
 * A context of `functionName` (its ARN in a made-up account), with `remaining` ms left: a
 * fixed number, or a function asked at each look (`countdown`).
 */
export function lambdaContext({ remaining = 900_000, ...fields }: Partial<Omit<LambdaContext, 'getRemainingTimeInMillis'>> & { readonly remaining?: number | (() => number) } = {}): LambdaContext {
  const functionName = fields.functionName ?? 'openclaw-backup-backup';
  return {
    awsRequestId: 'req',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '1024',
    ...fields,
    functionName,
    getRemainingTimeInMillis: typeof remaining === 'number' ? () => remaining : remaining,
  };
}
