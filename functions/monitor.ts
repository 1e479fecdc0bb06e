// The monitor function (`<prefix>-monitor`): configuration, logger, metrics and clients are
// created once per cold start; the handler lives in monitor-handler.ts.

import { Logger } from '@aws-lambda-powertools/logger';

import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readCoordinatorConfig, readFunctionConfig, required } from '../shared/control-plane/function-config.js';
import { createDynamoDbClient, createListInvokeClient } from './aws-clients.js';
import { allTenantNames, listFunctionPages } from './list-client.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';
import { monitorHandler } from './monitor-handler.js';

const config = readFunctionConfig(process.env);
const coordinator = readCoordinatorConfig(process.env);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const listPage = listFunctionPages(createListInvokeClient(config), required(coordinator.listFunction, FUNCTION_ENV.listFunction));

export const handler = monitorHandler({
  logger: new Logger({ serviceName: service }),
  metrics: powertoolsMetrics(createMetrics(service)),
  db: createDynamoDbClient(config),
  table: required(coordinator.statusTable, FUNCTION_ENV.statusTable),
  listNames: () => allTenantNames(listPage),
  staleAfterHours: coordinator.staleAfterHours,
});
