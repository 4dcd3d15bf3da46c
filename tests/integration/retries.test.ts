import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { createRedisNamespace, type TestRedisNamespace } from '../support/redis.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let ollama: FakeOllama;
let server: TestServer;
let redis: TestRedisNamespace | null;

describe.each([
  ['in-process', false],
  ['Redis', true],
] as const)('retries with the %s queue', (_name, useRedis) => {
  beforeEach(async () => {
    ollama = await startFakeOllama();
    redis = useRedis ? createRedisNamespace() : null;
    server = await startTestServer({
      env: {
        OLLAMA_BASE_URL: ollama.url,
        JOB_ATTEMPTS: '3',
        JOB_BACKOFF_MS: '100',
        ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix } : {}),
      },
    });
  });

  afterEach(async () => {
    await server.stop();
    await ollama.close();
    await redis?.cleanup();
  });

  async function start() {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who learns to sail' } });
    return server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
  }

  it('retries a transient model failure after a backoff, saying so, and completes once the model is back', async () => {
    ollama.options.failures.story = { kind: 'http-error', status: 503, message: 'server busy' };
    const subscription = await start();
    const retrying = await subscription.waitFor((event) => (event.generationProgress.stage ?? '').startsWith('Retrying'));
    expect(retrying.generationProgress.stage).toBe(
      `Retrying (attempt 2 of 3): Ollama at ${ollama.url} failed while writing the story with model llama3.2 (HTTP 503: server busy); check the Ollama server log`,
    );
    expect(retrying.generationProgress.status).not.toBe('FAILED');
    delete ollama.options.failures.story;

    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', errorMessage: null });
    expect(ollama.requests.filter((request) => request.agent === 'story').length).toBeGreaterThanOrEqual(2);
  });

  it('fails after the last attempt with the last error', async () => {
    ollama.options.failures.story = { kind: 'http-error', status: 503, message: 'server busy' };
    const events = (await (await start()).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(events.at(-1)!.errorMessage).toContain('HTTP 503: server busy');
    expect(ollama.requests.filter((request) => request.agent === 'story')).toHaveLength(3);
  });

  it('does not retry a permanent failure (the model is not installed)', async () => {
    ollama.options.model = 'another-model';
    const events = (await (await start()).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(events.some((event) => (event.stage ?? '').startsWith('Retrying'))).toBe(false);
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner']);
  });

  it('does not start a story over once its text was shown: a stream cut mid-story fails at once', async () => {
    ollama.options.failures.story = { kind: 'drop-mid-stream' };
    const events = (await (await start()).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(ollama.requests.filter((request) => request.agent === 'story')).toHaveLength(1);
  });
});
