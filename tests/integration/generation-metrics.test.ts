import { afterAll, beforeAll, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let server: TestServer;

beforeAll(async () => {
  ollama = await startFakeOllama();
  a1111 = await startFakeAutomatic1111();
  server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64' } });
});

afterAll(async () => {
  await server?.stop();
  await ollama?.close();
  await a1111?.close();
});

/** The value of one sample line of the Prometheus text format, or fails naming the line. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  expect(line, `${series} in /metrics`).toBeDefined();
  return Number(line!.slice(series.length + 1));
}

it('counts a generation from start to completion on /metrics: steps by stage, queue wait, story tokens and pictures', async () => {
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a measured story' } });
  const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  expect(events.at(-1)?.generationProgress.status).toBe('COMPLETED');
  const text = await (await fetch(`${server.url}/metrics`)).text();

  expect(sample(text, 'story_agent_generations_started_total')).toBe(1);
  expect(sample(text, 'story_agent_generations_completed_total')).toBe(1);
  expect(sample(text, 'story_agent_generations_cancelled_total')).toBe(0);
  expect(text).toMatch(/^# TYPE story_agent_generations_failed_total counter$/m);
  expect(text).not.toMatch(/^story_agent_generations_failed_total\{/m);

  // A one-page story: planned once, written once, character and scene painted one a call, composited once.
  expect(sample(text, 'story_agent_generation_stage_duration_seconds_count{stage="plan"}')).toBe(1);
  expect(sample(text, 'story_agent_generation_stage_duration_seconds_count{stage="write_page"}')).toBe(1);
  expect(sample(text, 'story_agent_generation_stage_duration_seconds_count{stage="paint"}')).toBe(2);
  expect(sample(text, 'story_agent_generation_stage_duration_seconds_count{stage="composite"}')).toBe(1);
  expect(text).not.toMatch(/stage="describe"/);
  expect(text).toMatch(/^story_agent_generation_stage_duration_seconds_bucket\{le="\+Inf",stage="plan"\} 1$/m);

  expect(sample(text, 'story_agent_generation_queue_wait_seconds_count')).toBe(1);
  expect(sample(text, 'story_agent_picture_seconds_count')).toBe(2);
  expect(sample(text, 'story_agent_story_tokens_per_second_count')).toBe(1);
  expect(sample(text, 'story_agent_story_tokens_total')).toBeGreaterThan(1);

  // TEXT_BACKEND=ollama: the backend in use is 1, every other name 0.
  expect(sample(text, 'story_agent_text_backend{backend="ollama"}')).toBe(1);
  expect(sample(text, 'story_agent_text_backend{backend="embedded"}')).toBe(0);
  expect(sample(text, 'story_agent_text_backend{backend="openai"}')).toBe(0);
});
