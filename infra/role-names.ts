// Names of the roles the stack creates, fixed from the deployment prefix and the region so
// that another account can name them in a bucket or key policy and keep naming them when a
// role is replaced (a new deploy, a changed setting). IAM names are global to the account,
// hence the region: the same prefix may be deployed in two regions.
//
// A policy in another account should match them with the aws:PrincipalArn condition key
// rather than put the ARN in `Principal`: IAM resolves a Principal ARN to the role's unique
// ID when the policy is saved, so a replaced role (same name, new ID) would be shut out;
// a condition compares the name at request time (infra/README-cross-account.md).

import { Aws } from 'aws-cdk-lib';

/** The roles with fixed names: one per function, the replication role, and the role EventBridge Scheduler invokes with. */
export type NamedRole = 'backup' | 'restore' | 'list' | 'prune' | 'fanout' | 'monitor' | 'replication' | 'scheduler';

/** `<prefix>-<role>-<region>` (at most 24 + 13 + 15 characters: within IAM's 64). */
export function roleName(prefix: string, role: NamedRole): string {
  return `${prefix}-${role}-${Aws.REGION}`;
}
