// The functions' custom metrics, in CloudWatch's embedded metric format through Powertools
// Metrics: one EMF document per operation (a backup, a restore, a fan-out, a freshness
// check), written to stdout when the operation ends, so CloudWatch Logs turns it into
// metrics with no API call and no network route (the VPC functions have none to CloudWatch).
// Names and dimensions are the stack's contract (control-plane/deployment.ts METRIC_NAMES):
// dimensions `service` (the prefix) and `operation` only; the tenant, trigger, error code and
// run go in as properties of the document, searchable in Logs Insights, never as dimensions.
// A function killed by its timeout writes no document: the stack's alarms on Lambda's own
// Errors and Duration metrics cover that.

import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

import { METRIC_NAMES, METRIC_NAMESPACE, type MetricOperation } from '../shared/control-plane/deployment.js';
import type { Trigger } from './events.js';

/** How an operation ended, as the metrics count it. */
export type MetricOutcome = 'succeeded' | 'failed' | 'refused' | 'skipped';

export interface OperationRecord {
  readonly operation: MetricOperation;
  readonly outcome: MetricOutcome;
  readonly trigger: Trigger;
  readonly durationMs: number;
  readonly tenant?: string | null;
  readonly bytes?: number;
  readonly archiveBytes?: number;
  readonly files?: number;
  readonly errorCode?: string;
  /** Why a queued backup was skipped. */
  readonly reason?: string;
  readonly runId?: string;
  readonly cronName?: string;
}

/** Counts of a coordinating operation (fan-out, freshness check), by METRIC_NAMES key. */
export type MetricCounts = Partial<Record<keyof typeof METRIC_NAMES, number>>;

export interface OperationMetrics {
  /** One operation's outcome, duration and sizes: written at once. */
  record(record: OperationRecord): void;
  /** Counts of a coordinating operation, with properties: written at once. */
  count(operation: MetricOperation, counts: MetricCounts, properties?: Record<string, unknown>): void;
}

const UNITS: Record<keyof typeof METRIC_NAMES, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  succeeded: MetricUnit.Count,
  failed: MetricUnit.Count,
  refused: MetricUnit.Count,
  skipped: MetricUnit.Count,
  durationMs: MetricUnit.Milliseconds,
  bytes: MetricUnit.Bytes,
  archiveBytes: MetricUnit.Bytes,
  files: MetricUnit.Count,
  queued: MetricUnit.Count,
  queueFailures: MetricUnit.Count,
  staleTenants: MetricUnit.Count,
  tenantsChecked: MetricUnit.Count,
};

/** A Powertools Metrics instance for the stack's namespace; `service` is the deployment prefix. */
export function createMetrics(serviceName: string): Metrics {
  return new Metrics({ namespace: METRIC_NAMESPACE, serviceName });
}

export function powertoolsMetrics(metrics: Metrics): OperationMetrics {
  const emit = (operation: MetricOperation, counts: MetricCounts, properties: Record<string, unknown>) => {
    metrics.addDimension('operation', operation);
    for (const [key, value] of Object.entries(counts) as [keyof typeof METRIC_NAMES, number | undefined][]) {
      if (value !== undefined) metrics.addMetric(METRIC_NAMES[key], UNITS[key], value);
    }
    for (const [key, value] of Object.entries(properties)) {
      if (value !== undefined && value !== null) metrics.addMetadata(key, typeof value === 'string' ? value : JSON.stringify(value));
    }
    metrics.publishStoredMetrics();
  };
  return {
    record(record) {
      emit(
        record.operation,
        {
          [record.outcome]: 1,
          durationMs: record.durationMs,
          ...(record.bytes !== undefined && { bytes: record.bytes }),
          ...(record.archiveBytes !== undefined && { archiveBytes: record.archiveBytes }),
          ...(record.files !== undefined && { files: record.files }),
        },
        { tenant: record.tenant, trigger: record.trigger, errorCode: record.errorCode, reason: record.reason, runId: record.runId, cronName: record.cronName },
      );
    },
    count(operation, counts, properties = {}) {
      emit(operation, counts, properties);
    },
  };
}

/** For handlers built without metrics (tests that do not look at them). */
export const noMetrics: OperationMetrics = { record() {}, count() {} };
