// Completion events: each backup and restore publishes one event (source `openclaw.backup`,
// detail type `OpenClaw Backup Succeeded`, `… Failed`, `OpenClaw Restore Succeeded`, `… Failed`)
// to an event bus, a custom one by default so the stack's traffic is kept apart. An
// optional encrypted SNS topic receives the failures through an example rule, and the
// stack's alarms: its policy lets EventBridge (that rule only, by its ARN) and CloudWatch
// (alarms named `<prefix>-…` of this account) publish. Without the CloudWatch statement the
// alarms could not publish at all: a topic policy replaces the default one that let the
// account's own services in, which is how a stack's alarms end up notifying nobody.
// CDK's `SnsTopic` target would let any EventBridge rule publish (no aws:SourceArn), so
// the rule gets a target that grants nothing and the topic a statement naming the rule. The key policy grants to both services stay unconditioned:
// AWS documents no aws:SourceArn in KMS requests made for EventBridge deliveries.
// Who may publish `openclaw.backup` events: on the stack's own bus (the default), the
// functions' roles only. Its resource policy denies events:PutEvents of that source to every
// other principal, whatever their IAM policies allow (an explicit deny wins, in the account
// too): a role allowed `events:PutEvents` on `*` can no longer forge a "Backup Succeeded" that
// marks a tenant fresh and silences the freshness alarm (`restrictPublishers`). Other sources
// stay open to whoever IAM lets in. The rules here and the monitor's also take only this
// account's events (`account`), so an account a bus policy lets in cannot forge one either.
// The default bus (useDefaultEventBus) gets no such policy: it is shared, and another
// deployment's functions publish the same source to it; there IAM alone decides (infra/README.md).

import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ProblemList } from './validation.js';
import { EVENT_DETAIL_TYPES, EVENT_SOURCE, STACK_PREFIX_PATTERN } from '../shared/control-plane/deployment.js';

export interface BackupEventsProps {
  /** Deployment prefix; a custom bus is named `<prefix>-events`. */
  readonly prefix: string;
  /**
   * Publish to the account's default event bus instead of a custom one.
   * @default false
   */
  readonly useDefaultBus?: boolean;
  /**
   * Create an encrypted SNS topic for failure notifications and alarms, fed by a rule
   * matching the failure events.
   * @default true
   */
  readonly notifications?: boolean;
  /**
   * Email address subscribed to the notification topic (the subscription must be confirmed).
   * Only with `notifications`.
   * @default - no subscription
   */
  readonly notificationEmail?: string;
}

export class BackupEvents extends Construct {
  readonly eventBus: events.IEventBus;
  /** Topic receiving failure events and alarms, when notifications are on. */
  readonly notificationTopic?: sns.ITopic;
  /** The example rule forwarding failure events to the topic. */
  readonly failureRule?: events.Rule;

  constructor(scope: Construct, id: string, props: BackupEventsProps) {
    super(scope, id);
    validate(props);

    this.eventBus = props.useDefaultBus
      ? events.EventBus.fromEventBusName(this, 'EventBus', 'default')
      : new events.EventBus(this, 'EventBus', {
          eventBusName: `${props.prefix}-events`,
          description: 'Completion events of the OpenClaw tenant backups and restores',
        });

    if (!(props.notifications ?? true)) return;

    // SNS encryption with the AWS managed key would shut out EventBridge and CloudWatch,
    // which cannot use that key: a customer managed key grants them what they need.
    const key = new kms.Key(this, 'NotificationsKey', {
      description: `Encrypts the ${props.prefix} notification topic`,
      enableKeyRotation: true,
      // Topics keep no messages: nothing needs the key once the topic is gone.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    for (const service of ['events.amazonaws.com', 'cloudwatch.amazonaws.com']) {
      key.grant(new iam.ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey*');
    }
    const topic = new sns.Topic(this, 'Notifications', {
      displayName: `${props.prefix} backup notifications`,
      masterKey: key,
      enforceSSL: true,
    });
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: `${props.prefix}-*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    if (props.notificationEmail !== undefined) {
      topic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }
    // Not the queued ones: a run of 10,000 tenants against an outage would send 30,000
    // messages; those reach the topic as alarms, one per change of state (backup-observability.ts).
    this.failureRule = new events.Rule(this, 'FailureRule', {
      description: 'Example: forwards failed backups and restores to the notification topic (queued backups: through the alarms)',
      eventBus: this.eventBus,
      eventPattern: {
        source: [EVENT_SOURCE],
        // Only this account's: a bus opened to other accounts (the default bus shared with an organization) passes theirs on too.
        account: [stack.account],
        detailType: [EVENT_DETAIL_TYPES.backup.failed, EVENT_DETAIL_TYPES.restore.failed],
        detail: { trigger: [{ 'anything-but': 'queue' }] },
      },
      targets: [topicWithoutGrant(topic)],
    });
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'FailureRulePublish',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: { ArnEquals: { 'aws:SourceArn': this.failureRule.ruleArn } },
      }),
    );
    this.notificationTopic = topic;
  }
}

/** The statement ID of the bus policy's deny. */
export const PUBLISHERS_STATEMENT_ID = 'OnlyTheFunctionsPublishCompletionEvents';

/**
 * Denies events:PutEvents of the completion events' source on `bus` to every principal but
 * `roles` (the functions that publish them). `aws:PrincipalArn` is a role's ARN (its path
 * included), never a session's, and is compared at request time: a role replaced under the same
 * name keeps publishing. `ForAnyValue`: one forged entry among a request's ten is enough.
 * Returns false for a bus it cannot attach a policy to (an imported one: the default bus).
 */
export function restrictPublishers(bus: events.IEventBus, roles: readonly iam.IRole[]): boolean {
  if (!(bus instanceof events.EventBus)) return false;
  // The bus's own Policy property rather than addToResourcePolicy's AWS::Events::EventBusPolicy,
  // whose synthesis prints a deprecation warning (its `principal`) on every `cdk synth`. The
  // ARN from the bus's name, not its attribute: a resource cannot name its own attribute.
  const resource = bus.node.defaultChild as events.CfnEventBus;
  const busArn = Stack.of(bus).formatArn({ service: 'events', resource: 'event-bus', resourceName: resource.name });
  resource.policy = new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: PUBLISHERS_STATEMENT_ID,
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['events:PutEvents'],
        resources: [busArn],
        conditions: {
          'ForAnyValue:StringEquals': { 'events:source': [EVENT_SOURCE] },
          ArnNotEquals: { 'aws:PrincipalArn': roles.map((role) => role.roleArn) },
        },
      }),
    ],
  });
  return true;
}

/** A rule target publishing to `topic` that, unlike `targets.SnsTopic`, adds no publish grant. */
function topicWithoutGrant(topic: sns.ITopic): events.IRuleTarget {
  return { bind: () => ({ arn: topic.topicArn, targetResource: topic }) };
}

function validate(props: BackupEventsProps): void {
  const problems = new ProblemList('BackupEvents');
  problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
  if (props.notificationEmail !== undefined) {
    problems.check(
      /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(props.notificationEmail),
      `notificationEmail ${JSON.stringify(props.notificationEmail)} is not an email address`,
    );
    problems.check(props.notifications ?? true, 'notificationEmail needs notifications');
  }
  problems.throwIfAny();
}
