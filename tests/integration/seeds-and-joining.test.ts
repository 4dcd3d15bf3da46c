import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('edge cases of a generation', () => {
  it('paints the largest seed, 2147483647, with that seed (and the next, wrapped, 0)', async () => {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a seeded story', seed: 2147483647 } });
    await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    expect(a1111.calls.map((call) => call.seed).sort((a, b) => a - b)).toEqual([0, 2147483647]);
  });

  it('gives a subscriber joining a finished session the whole story text in its first event, flagged storyTextReset', async () => {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a finished story' } });
    const live = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const text = live.map((event) => event.generationProgress.storyTextDelta ?? '').join('');
    expect(text).toContain('Mara');

    const late = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    expect(late).toHaveLength(1);
    expect(late[0].generationProgress).toMatchObject({ status: 'COMPLETED', storyTextReset: true });
    expect(late[0].generationProgress.storyTextDelta).toContain('Mara');
  });
});
