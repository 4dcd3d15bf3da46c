import { ErrorCode } from '../client/error-codes.js';
import { timingSafeEqual } from 'node:crypto';
import express from 'express';
import { collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';

const KNOWN_ROUTES = new Set(['/graphql', '/healthz', '/readyz', '/metrics', '/']);

/** One dependency /readyz asks about; throws when it is not ready. */
interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface OperationsOptions {
  readiness: ReadinessCheck[];
  /** Where every metric of the process is registered (the generation metrics too); /metrics serves it. */
  registry: Registry;
  /** Sessions per status, read at each scrape. */
  countSessions: () => Promise<{ status: string; count: number }[]>;
  /** Generations running in this process. */
  runningHere: () => number;
  /** Open GraphQL WebSockets. */
  openWebSockets: () => number;
  /** 'open' | 'off' | a bearer token /metrics requires. */
  metricsAccess: { kind: 'open' } | { kind: 'off' } | { kind: 'token'; token: string };
  logger: Logger;
}

/**
 * GET /readyz: every dependency answers (database, text model server with its model, image
 * backend); 503 names the failing ones (reasons go to the log, not to whoever asks).
 * GET /metrics: Prometheus text format (prom-client), off or behind a token as configured.
 * The returned middleware times every HTTP request for the duration histogram.
 */
export type MetricsAccess = OperationsOptions['metricsAccess'];

/** GET /metrics: the registry in Prometheus text format; passes on (404) when off, 401 without the token when one is set. */
export function metricsHandler(registry: Registry, access: MetricsAccess): express.RequestHandler {
  return async (req, res, next) => {
    if (access.kind === 'off') return next();
    if (access.kind === 'token') {
      const given = Buffer.from(req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? '');
      const expected = Buffer.from(access.token);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res
          .status(401)
          .json({ errors: [{ message: 'Send METRICS_TOKEN as Authorization: Bearer <token>.', extensions: { code: ErrorCode.UNAUTHENTICATED } }] });
        return;
      }
    }
    res.type(registry.contentType).send(await registry.metrics());
  };
}

export function operationsRoutes(options: OperationsOptions): { router: express.Router; timeRequests: express.RequestHandler } {
  const { registry } = options;
  collectDefaultMetrics({ register: registry, prefix: 'story_agent_' });
  new Gauge({
    name: 'story_agent_generation_sessions',
    help: 'Generation sessions by status (PENDING is the queue; COMPLETED/FAILED/CANCELLED count finished ones)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { status, count } of await options.countSessions()) this.set({ status }, count);
    },
  });
  new Gauge({
    name: 'story_agent_generations_running',
    help: 'Generations running in this process',
    registers: [registry],
    collect() {
      this.set(options.runningHere());
    },
  });
  new Gauge({
    name: 'story_agent_websocket_connections',
    help: 'Open GraphQL WebSocket connections (subscriptions)',
    registers: [registry],
    collect() {
      this.set(options.openWebSockets());
    },
  });
  const requestSeconds = new Histogram({
    name: 'story_agent_http_request_duration_seconds',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  const router = express.Router();
  const lastState = new Map<string, 'ok' | 'failing'>();
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      options.readiness.map(async ({ name, check }) => {
        try {
          await check();
          if (lastState.get(name) === 'failing') options.logger.info({ check: name }, 'readiness check passes again');
          lastState.set(name, 'ok');
          return [name, 'ok'] as const;
        } catch (error) {
          // Once per change, and the reason only: a probe every few seconds must not fill the log with stack traces.
          if (lastState.get(name) !== 'failing') {
            options.logger.warn({ check: name, reason: error instanceof Error ? error.message : String(error) }, 'readiness check failed');
          }
          lastState.set(name, 'failing');
          return [name, 'failing'] as const;
        }
      }),
    );
    const ready = results.every(([, state]) => state === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });
  router.get('/metrics', metricsHandler(registry, options.metricsAccess));

  const timeRequests: express.RequestHandler = (req, res, next) => {
    const end = requestSeconds.startTimer();
    const path = req.path;
    res.on('finish', () => {
      // Known routes only as labels: anything else would let clients grow the label set.
      const route = KNOWN_ROUTES.has(path) ? path : path.startsWith('/media/') ? '/media' : 'other';
      end({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };
  return { router, timeRequests };
}
