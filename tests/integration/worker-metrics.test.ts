import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createRedisNamespace } from '../support/redis.js';
import { createTestDatabase } from '../support/test-database.js';

describe('a worker process with WORKER_METRICS_PORT', () => {
  it('serves its generation metrics and /healthz, and nothing else, over HTTP', async ({ onTestFinished }) => {
    const database = await createTestDatabase();
    const redis = createRedisNamespace();
    onTestFinished(async () => {
      await database.drop();
      await redis.cleanup();
    });
    const config = loadConfig({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      WORKER_METRICS_PORT: '0',
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    });
    const worker = await startApp(config, { role: 'worker', logger: pino({ level: 'silent' }) });
    onTestFinished(() => worker.stop(0));
    expect(worker.http).toBeNull();
    const url = worker.workerMetrics?.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('story_agent_generations_completed_total 0');
    expect(text).toContain('# TYPE story_agent_generation_stage_duration_seconds histogram');
    expect(text).toContain('story_agent_nodejs_eventloop_lag_seconds');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/graphql`, { method: 'POST' })).status).toBe(404);
  });
});
