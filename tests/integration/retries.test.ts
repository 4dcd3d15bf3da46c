import { describe, expect } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { retryingStage } from '../../src/services/progress/progress-plan.js';
import { freshStackTest as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

describe.each([
  ['in-process', false],
  ['Redis', true],
] as const)('retries with the %s queue', (_name, useRedis) => {
  // No image backend: these tests are about the story job's attempts.
  it.override('stack', { redis: useRedis, env: { IMAGE_BACKEND: 'none', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '100' } });

  async function start(server: TestServer) {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who learns to sail' } });
    return server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
  }

  it('retries a transient model failure after a backoff, saying so, and completes once the model is back', async ({ server, ollama }) => {
    ollama.options.failures.story = { kind: 'http-error', status: 503, message: 'server busy' };
    const subscription = await start(server);
    const retrying = await subscription.waitFor((event) => event.generationProgress.stageCode === 'RETRYING');
    expect(retrying.generationProgress.stage).toBe(
      retryingStage(2, 3, `Ollama at ${ollama.url} failed while writing the story with model llama3.2 (HTTP 503: server busy); check the Ollama server log`)
        .label,
    );
    expect(retrying.generationProgress.status).not.toBe('FAILED');
    delete ollama.options.failures.story;

    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', errorMessage: null });
    expect(ollama.requests.filter((request) => request.agent === 'story').length).toBeGreaterThanOrEqual(2);
  });

  it('fails after the last attempt with the last error', async ({ server, ollama }) => {
    ollama.options.failures.story = { kind: 'http-error', status: 503, message: 'server busy' };
    const events = (await (await start(server)).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(events.at(-1)!.errorMessage).toContain('HTTP 503: server busy');
    expect(ollama.requests.filter((request) => request.agent === 'story')).toHaveLength(3);
  });

  it('does not retry a permanent failure (the model is not installed)', async ({ server, ollama }) => {
    ollama.options.model = 'another-model';
    const events = (await (await start(server)).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(events.some((event) => event.stageCode === 'RETRYING')).toBe(false);
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner']);
  });

  it('does not start a story over once its text was shown: a stream cut mid-story fails at once', async ({ server, ollama }) => {
    ollama.options.failures.story = { kind: 'drop-mid-stream' };
    const events = (await (await start(server)).done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('FAILED');
    expect(ollama.requests.filter((request) => request.agent === 'story')).toHaveLength(1);
  });
});
