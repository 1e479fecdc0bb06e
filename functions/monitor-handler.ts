// The monitor function (`<prefix>-monitor`), outside the VPC, with two jobs:
//   - record each backup's outcome: an EventBridge rule hands it every "OpenClaw Backup
//     Succeeded|Failed" completion event, which it writes to the status table as the
//     tenant's last success or last failure (control-plane/status-table.ts; an older event
//     never overwrites a newer one). A write that fails throws, so Lambda retries it (twice)
//     and then keeps the event in the stack's asynchronous DLQ.
//   - check freshness, hourly (the stack's schedule): every tenant the list function sees
//     against those records (control-plane/freshness.ts), emitting `StaleTenants` (the
//     freshness alarm's metric) and `TenantsChecked` (whose absence is the "check is not
//     running" alarm), and naming the stalest tenants in its log.

import type { Logger } from '@aws-lambda-powertools/logger';

import { EVENT_DETAIL_TYPES, EVENT_SOURCE, FRESHNESS_CHECK_EVENT } from '../shared/control-plane/deployment.js';
import { checkFreshness, STALE_SAMPLE_SIZE, type FreshnessReport } from '../shared/control-plane/freshness.js';
import { isRecord } from '../shared/control-plane/protocol.js';
import { recordBackupOutcome, type Db } from '../shared/control-plane/status-table.js';
import { InvalidRequestError } from '../shared/errors.js';
import type { CompletionDetail } from './events.js';
import type { Handler } from './handler-deps.js';
import { noMetrics, type OperationMetrics } from './metrics.js';

export interface MonitorDeps {
  readonly logger: Logger;
  readonly db: Db;
  readonly table: string;
  /** Every tenant on the volume (through the list function). */
  listNames(): Promise<readonly string[]>;
  readonly staleAfterHours?: number;
  /** @default none */
  readonly metrics?: OperationMetrics;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export type MonitorResponse =
  | { readonly recorded: 'recorded' | 'older' | 'ignored'; readonly tenant?: string }
  | { readonly freshness: Omit<FreshnessReport, 'stale'> & { readonly stale: number; readonly staleSample: readonly string[] } };

export function monitorHandler(deps: MonitorDeps): Handler<MonitorResponse> {
  const { logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const now = deps.now ?? (() => new Date());
  return async (event, context) => {
    logger.addContext(context);
    try {
      if (isRecord(event) && event.source === FRESHNESS_CHECK_EVENT.source && event.check === FRESHNESS_CHECK_EVENT.check) {
        const started = Date.now();
        const report = await checkFreshness({ db: deps.db, table: deps.table, listNames: deps.listNames, now, ...(deps.staleAfterHours !== undefined && { staleAfterHours: deps.staleAfterHours }) });
        const staleSample = report.stale.slice(0, STALE_SAMPLE_SIZE).map((entry) => entry.tenant);
        const attributes = { tenants: report.tenants, stale: report.stale.length, firstSeen: report.firstSeen, staleAfterHours: report.staleAfterHours };
        if (report.stale.length > 0) {
          logger.warn('tenants without a successful backup', { ...attributes, stalest: report.stale.slice(0, STALE_SAMPLE_SIZE) });
        } else {
          logger.info('every tenant is fresh', attributes);
        }
        metrics.count('freshness', { staleTenants: report.stale.length, tenantsChecked: report.tenants, durationMs: Date.now() - started }, { staleSample });
        return { freshness: { ...report, stale: report.stale.length, staleSample } };
      }
      if (isRecord(event) && event.source === EVENT_SOURCE && isRecord(event.detail) && typeof event.time === 'string') {
        const detailType = event['detail-type'];
        if (detailType !== EVENT_DETAIL_TYPES.backup.ok && detailType !== EVENT_DETAIL_TYPES.backup.failed) return { recorded: 'ignored' };
        const detail = event.detail as unknown as CompletionDetail;
        if (typeof detail.tenant !== 'string') return { recorded: 'ignored' }; // a failure before the request named a tenant
        const recorded = await recordBackupOutcome(deps.db, deps.table, {
          tenant: detail.tenant,
          ok: detailType === EVENT_DETAIL_TYPES.backup.ok,
          time: new Date(event.time).toISOString(),
          location: typeof detail.location === 'string' ? detail.location : '',
          trigger: typeof detail.trigger === 'string' ? detail.trigger : 'direct',
          ...(typeof detail.durationMs === 'number' && { durationMs: detail.durationMs }),
          ...(typeof detail.bytes === 'number' && { bytes: detail.bytes }),
          ...(typeof detail.archiveBytes === 'number' && { archiveBytes: detail.archiveBytes }),
          ...(isRecord(detail.error) && { error: { code: String(detail.error.code), message: String(detail.error.message) } }),
        });
        logger.info('backup outcome recorded', { tenant: detail.tenant, detailType, recorded });
        return { recorded, tenant: detail.tenant };
      }
      throw new InvalidRequestError('monitor: expected a backup completion event or the freshness check');
    } catch (error) {
      logger.error('monitor failed', { errorName: (error as Error).name, errorMessage: (error as Error).message });
      throw error;
    } finally {
      logger.resetKeys();
    }
  };
}
