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

/** The backends `story_agent_text_backend` marks 1 on /metrics. */
async function backendOnMetrics(running: TestServer): Promise<string[]> {
  const text = await (await fetch(`${running.url}/metrics`)).text();
  return [...text.matchAll(/^story_agent_text_backend\{backend="(\w+)"\} 1$/gm)].map((match) => match[1]);
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
  it('writes with the embedded model while no Ollama answers and while Ollama lacks the model, with Ollama once it has it, and the set-up panel follows', {
    timeout: 180_000,
  }, async () => {
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

    // Ollama starts, without the model: the embedded model on disk keeps writing, and the panel offers the pull beside it.
    ollama = await startFakeOllama({ modelInstalled: false }, port);
    expect(await storyModel(server)).toMatchObject({
      state: 'READY',
      backend: 'embedded',
      message: `Ollama at ${ollamaUrl} does not have the model "llama3.2": the embedded model ${model.file} is used; pull it into Ollama (here, or \`ollama pull llama3.2\`) to use Ollama`,
      action: { kind: 'OLLAMA_PULL', source: 'llama3.2' },
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(server.app.textBackend).toBe('embedded');
    const second = await book(server, 'a fox who counts the stars');
    expect(second).toMatchObject({ status: 'COMPLETED', errorMessage: null });
    expect(second.story!.title).not.toBe(DEFAULT_PLAN.title);
    expect(ollama.requests).toEqual([]);
    expect(await backendOnMetrics(server)).toEqual(['embedded']);

    // The model appears in Ollama's list (an \`ollama pull\` by hand): the next book goes to Ollama.
    ollama.options.modelInstalled = true;
    const third = await book(server, 'a lighthouse keeper');
    expect(third.status).toBe('COMPLETED');
    expect(third.story!.title).toBe(DEFAULT_PLAN.title);
    expect(third.story!.storyText).toContain('Mara had kept the lighthouse on Gull Point');
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner', 'story']);
    expect(server.app.textBackend).toBe('ollama');
    expect(await backendOnMetrics(server)).toEqual(['ollama']);
    expect(await storyModel(server)).toMatchObject({ state: 'READY', backend: 'ollama', message: `Ollama at ${ollamaUrl} has llama3.2`, action: null });

    // Ollama stops: the next book goes back to the embedded model (freed meanwhile, so loaded again).
    await ollama.close();
    ollama = null;
    const fourth = await book(server, 'a snail who races the rain');
    expect(fourth.status).toBe('COMPLETED');
    expect(fourth.story!.title).not.toBe(DEFAULT_PLAN.title);
    expect(server.app.textBackend).toBe('embedded');
    expect((await storyModel(server)).backend).toBe('embedded');
  });
});

describe('TEXT_BACKEND unset, with Ollama lacking the model and the embedded GGUF on disk', () => {
  it('writes with the embedded model, even while the panel pulls the model into Ollama, and with Ollama from the book after the pull, without waiting out OLLAMA_RECHECK_MS', {
    timeout: 180_000,
  }, async () => {
    const port = await freePort();
    ollama = await startFakeOllama({ modelInstalled: false }, port);
    server = await startTestServer({
      env: {
        TEXT_BACKEND: '',
        OLLAMA_BASE_URL: `http://127.0.0.1:${port}`,
        // An hour: only the set-up service's word that the pull is done can move the next book to Ollama this soon.
        OLLAMA_RECHECK_MS: '3600000',
        EMBEDDED_MODEL_FILE: model.file,
        EMBEDDED_THREADS: '1',
        EMBEDDED_SEED: '11',
        STORY_MAX_CHARS: '300',
        IMAGE_BACKEND: 'none',
      },
    });
    expect(server.app.textBackend).toBe('embedded');

    // A pull held half-way: a book started meanwhile is written by the embedded model, without waiting for the pull.
    const paused = ollama.pausePulls();
    await server.query(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    await paused.reached;
    const during = await book(server, 'a fox who counts the stars');
    expect(during.status).toBe('COMPLETED');
    expect(during.story!.title).not.toBe(DEFAULT_PLAN.title);
    expect(ollama.requests).toEqual([]);

    paused.release();
    expect((await pull(server, 'STORY_MODEL')).at(-1)).toMatchObject({ state: 'COMPLETED' });
    expect(ollama.pulls).toEqual(['llama3.2']);
    const after = await book(server, 'a lighthouse keeper');
    expect(after.status).toBe('COMPLETED');
    expect(after.story!.title).toBe(DEFAULT_PLAN.title);
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner', 'story']);
    expect(server.app.textBackend).toBe('ollama');
  });
});
