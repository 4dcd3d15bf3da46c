import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { notFound } from './http-errors.js';
import { type MetricsAccess, metricsHandler } from './operations.js';

export interface RunningMetricsServer {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  close(): Promise<void>;
}

/**
 * A worker serves no GraphQL, so its generation metrics (stage times, outcomes, pictures, tokens)
 * would have no /metrics to be scraped from: with WORKER_METRICS_PORT set it listens for
 * GET /metrics (same access rules as the API's) and GET /healthz, and nothing else.
 */
export async function startWorkerMetricsServer(options: {
  registry: Registry;
  access: MetricsAccess;
  host: string;
  port: number;
  logger: Logger;
}): Promise<RunningMetricsServer> {
  collectDefaultMetrics({ register: options.registry, prefix: 'story_agent_' });
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', metricsHandler(options.registry, options.access));
  app.use(notFound);
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  options.logger.info({ url: `${url}/metrics` }, 'worker metrics are served');
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
