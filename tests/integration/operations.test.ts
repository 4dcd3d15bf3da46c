import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const TOKEN = 'metrics-token-0123456789';

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let up: TestServer;
let noOllama: TestServer;
let production: TestServer;

beforeAll(async () => {
  ollama = await startFakeOllama();
  a1111 = await startFakeAutomatic1111();
  up = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64' } });
  // The test default OLLAMA_BASE_URL (port 9) has nothing listening.
  noOllama = await startTestServer({ env: { IMAGE_BACKEND: 'none' } });
  production = await startTestServer({ env: { NODE_ENV: 'production', IMAGE_BACKEND: 'none', METRICS_TOKEN: TOKEN } });
});

afterAll(async () => {
  await up?.stop();
  await noOllama?.stop();
  await production?.stop();
  await ollama?.close();
  await a1111?.close();
});

describe('GET /readyz', () => {
  it('is 200 when the database, the text model server and the image backend answer', async () => {
    const response = await fetch(`${up.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready', checks: { database: 'ok', textModel: 'ok', images: 'ok' } });
  });

  it('is 503 naming the failing dependency while /healthz (the process) stays 200', async () => {
    const response = await fetch(`${noOllama.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'not ready', checks: { database: 'ok', textModel: 'failing' } });
    expect((await fetch(`${noOllama.url}/healthz`)).status).toBe(200);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus metrics: sessions by status, event-loop delay, request durations', async () => {
    const { startGeneration } = await up.query(StartGenerationDocument, { input: { prompt: 'a counted story' } });
    await up.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const response = await fetch(`${up.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^story_agent_generation_sessions\{status="COMPLETED"\} 1$/m);
    expect(text).toMatch(/^story_agent_nodejs_eventloop_lag_seconds \d/m);
    expect(text).toMatch(/^story_agent_http_request_duration_seconds_count\{route="\/graphql",method="POST",status="200"\} \d+$/m);
    expect(text).toMatch(/^story_agent_generations_running 0$/m);
  });

  it('in production wants METRICS_TOKEN', async () => {
    expect((await fetch(`${production.url}/metrics`)).status).toBe(401);
    const response = await fetch(`${production.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('story_agent_generation_sessions');
  });
});
