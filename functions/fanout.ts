// The fan-out function (`<prefix>-fanout`): configuration, logger, metrics and clients are
// created once per cold start; the handler lives in fanout-handler.ts.

import { Logger } from '@aws-lambda-powertools/logger';
import { InvokeCommand } from '@aws-sdk/client-lambda';

import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readCoordinatorConfig, readFunctionConfig, required } from '../shared/control-plane/function-config.js';
import { createHandOnClient, createListInvokeClient, createSqsClient } from './aws-clients.js';
import { fanOutHandler } from './fanout-handler.js';
import { listFunctionPages } from './list-client.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';

const config = readFunctionConfig(process.env);
const coordinator = readCoordinatorConfig(process.env);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const handOnClient = createHandOnClient(config);

export const handler = fanOutHandler({
  config,
  logger: new Logger({ serviceName: service }),
  metrics: powertoolsMetrics(createMetrics(service)),
  sqs: createSqsClient(config),
  queueUrl: required(coordinator.workQueueUrl, FUNCTION_ENV.workQueueUrl),
  listPage: listFunctionPages(createListInvokeClient(config), required(coordinator.listFunction, FUNCTION_ENV.listFunction)),
  handOn: async (functionName, payload) => {
    await handOnClient.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: new TextEncoder().encode(JSON.stringify(payload)) }));
  },
});
