import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  type SetupComponent,
  SetupProgressDocument,
  SetupStatusDocument,
  StartGenerationDocument,
  StartModelDownloadDocument,
  type SetupStatusQuery,
} from '../../src/client/generated/graphql.js';
import { DEFAULT_PLAN, startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { freePort } from '../support/free-port.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { buildTinyGgufModel, type TinyGgufModel } from '../support/tiny-gguf-model.js';

type Component = SetupStatusQuery['setupStatus']['components'][number];

/**
 * TEXT_BACKEND unset on a machine where Ollama comes and goes while the server
 * runs: each book goes to Ollama if it answers as the book starts, else to the
 * embedded model (the tiny GGUF built here, in the server process). The fake
 * Ollama is started after the server, on the port OLLAMA_BASE_URL names.
 * OLLAMA_RECHECK_MS=0 so each generation looks afresh (the reuse of a look is
 * the unit tests' business).
 */
let model: TinyGgufModel;
let server: TestServer | null = null;
let ollama: FakeOllama | null = null;

beforeAll(async () => {
  model = await buildTinyGgufModel();
});

afterAll(async () => {
  await model.remove();
});

afterEach(async () => {
  await server?.stop();
  await ollama?.close();
  server = null;
  ollama = null;
});

async function storyModel(running: TestServer): Promise<Component> {
  const { setupStatus } = await running.query(SetupStatusDocument);
  return setupStatus.components.find((component) => component.component === 'STORY_MODEL')!;
}

/** One book of one page, followed to its end; its session as saved. */
async function book(running: TestServer, prompt: string) {
  const { startGeneration } = await running.query(StartGenerationDocument, { input: { prompt, pageCount: 1 } });
  await running.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  return (await running.query(GenerationSessionDocument, { id: startGeneration.id })).generationSession!;
}

async function pull(running: TestServer, component: SetupComponent) {
  await running.query(StartModelDownloadDocument, { component });
  return (await running.subscribe(SetupProgressDocument, { component }).done).map((event) => event.setupProgress);
}

describe('TEXT_BACKEND unset, with Ollama started after the server', () => {
  it('writes the first book with the embedded model, the next with Ollama once it answers, and the set-up panel follows', { timeout: 180_000 }, async () => {
    const port = await freePort();
    const ollamaUrl = `http://127.0.0.1:${port}`;
    server = await startTestServer({
      env: {
        TEXT_BACKEND: '',
        OLLAMA_BASE_URL: ollamaUrl,
        OLLAMA_RECHECK_MS: '0',
        EMBEDDED_MODEL_FILE: model.file,
        // One thread and a fixed seed, and a short story (the tiny model runs every page to its limit), as in embedded-books.test.ts.
        EMBEDDED_THREADS: '1',
        EMBEDDED_SEED: '11',
        STORY_MAX_CHARS: '300',
        IMAGE_BACKEND: 'none',
      },
    });
    expect(server.app.textBackend).toBe('embedded');
    expect(await storyModel(server)).toMatchObject({
      state: 'READY',
      backend: 'embedded',
      message: `Ollama is not reachable at ${ollamaUrl}: the embedded model ${model.file} is used`,
      action: null,
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    const first = await book(server, 'a fox who counts the stars');
    expect(first.status).toBe('COMPLETED');
    expect(first.story!.title).not.toBe(DEFAULT_PLAN.title);
    expect(first.story!.storyText.length).toBeGreaterThan(0);

    // Ollama starts, without the model yet: the panel shows Ollama and offers to pull the model through it.
    ollama = await startFakeOllama({ modelInstalled: false }, port);
    expect(await storyModel(server)).toMatchObject({
      state: 'MISSING',
      backend: 'ollama',
      message: `Ollama at ${ollamaUrl} does not have the model "llama3.2"; pull it`,
      action: { kind: 'OLLAMA_PULL', source: 'llama3.2' },
    });
    const readiness = await fetch(`${server.url}/readyz`);
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toMatchObject({ checks: { textModel: 'failing' } });
    expect(server.app.textBackend).toBe('ollama');

    expect((await pull(server, 'STORY_MODEL')).at(-1)).toMatchObject({ state: 'COMPLETED' });
    expect(await storyModel(server)).toMatchObject({ state: 'READY', backend: 'ollama', message: `Ollama at ${ollamaUrl} has llama3.2` });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    const second = await book(server, 'a lighthouse keeper');
    expect(second.status).toBe('COMPLETED');
    expect(second.story!.title).toBe(DEFAULT_PLAN.title);
    expect(second.story!.storyText).toContain('Mara had kept the lighthouse on Gull Point');
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner', 'story']);

    // Ollama stops: the next book goes back to the embedded model (freed meanwhile, so loaded again).
    await ollama.close();
    ollama = null;
    const third = await book(server, 'a snail who races the rain');
    expect(third.status).toBe('COMPLETED');
    expect(third.story!.title).not.toBe(DEFAULT_PLAN.title);
    expect(server.app.textBackend).toBe('embedded');
    expect((await storyModel(server)).backend).toBe('embedded');
  });
});
