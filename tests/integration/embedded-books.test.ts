import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { buildTinyGgufModel, type TinyGgufModel } from '../support/tiny-gguf-model.js';

type Progress = GenerationProgressSubscription['generationProgress'];

/**
 * (CPU work on a shared machine: the two generation tests get more than the lane's 30 s.)
 *
 * Whole books through TEXT_BACKEND=embedded: node-llama-cpp running a tiny
 * GGUF model built here, in the server process, over real HTTP, WebSocket and
 * PostgreSQL. The tiny model writes gibberish; its plan is still a valid plan
 * (structured output is grammar-constrained) and its pages run to their
 * limits, so the book completes with the warnings the text rules give.
 */
let model: TinyGgufModel;
let servers: TestServer[] = [];
let a1111: FakeAutomatic1111 | null = null;
let ollama: FakeOllama | null = null;

beforeAll(async () => {
  model = await buildTinyGgufModel();
});

afterAll(async () => {
  await model.remove();
});

afterEach(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  servers = [];
  await a1111?.close();
  await ollama?.close();
  a1111 = null;
  ollama = null;
});

/** One thread (the test machine is shared) and a fixed seed (the same text every run). */
async function embeddedServer(env: Record<string, string | undefined> = {}): Promise<TestServer> {
  const server = await startTestServer({
    env: { TEXT_BACKEND: 'embedded', EMBEDDED_MODEL_FILE: model.file, EMBEDDED_THREADS: '1', EMBEDDED_SEED: '11', ...env },
  });
  servers.push(server);
  return server;
}

describe('a book written by the embedded model', () => {
  it('plans it through the JSON grammar, writes, streams and saves every page, paints the pictures, and completes with the length warnings', {
    timeout: 120_000,
  }, async () => {
    a1111 = await startFakeAutomatic1111();
    const server = await embeddedServer({
      STORY_MAX_CHARS: '800',
      IMAGE_BACKEND: 'automatic1111',
      AUTOMATIC1111_URL: a1111.url,
      IMAGE_WIDTH: '64',
      IMAGE_HEIGHT: '64',
    });
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who counts the stars', pageCount: 3 } });
    const events: Progress[] = (await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map(
      (event) => event.generationProgress,
    );
    const session = (await server.query(GenerationSessionDocument, { id: startGeneration.id })).generationSession!;

    expect(session.status).toBe('COMPLETED');
    const story = session.story!;
    expect(story.title).not.toBe('');
    expect(story.pages.map((page) => page.index)).toEqual([0, 1, 2]);
    for (const page of story.pages) {
      // 800 characters over 3 pages: each page gets at least 400.
      expect(page.text.length).toBeGreaterThanOrEqual(20);
      expect(page.text.length).toBeLessThanOrEqual(400);
      expect(page.sceneDescription).toMatch(/[a-z]/i);
      expect(page.combinedImage).toMatchObject({ imageType: 'COMBINED', pageIndex: page.index });
      // The page's text came over the subscription, tagged with its page.
      const streamed = events.filter((event) => event.pageIndex === page.index && event.storyTextDelta).map((event) => event.storyTextDelta);
      expect(streamed.length).toBeGreaterThan(0);
    }
    expect(story.storyText).toBe(story.pages.map((page) => page.text).join('\n\n'));
    // The tiny model never stops by itself before a page's share of STORY_MAX_CHARS: each page is cut there, and says so.
    expect(session.warnings).toEqual(
      [0, 1, 2].map((index) => expect.stringMatching(new RegExp(`^Page ${index + 1} (reached its share of STORY_MAX_CHARS|was cut short)`))),
    );
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
  });

  it('keeps answering queries while the model generates, and a cancel stops it and frees the model for the next generation', { timeout: 120_000 }, async () => {
    // A long story: without the cancel the tiny model would write tens of thousands of characters.
    const server = await embeddedServer({ STORY_MAX_CHARS: '50000', IMAGE_BACKEND: 'none' });
    for (const prompt of ['a lighthouse keeper', 'a storm that learns to sing']) {
      const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt } });
      const progress = server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
      await progress.waitFor((event) => Boolean(event.generationProgress.storyTextDelta));

      // The event loop is free while llama.cpp generates on its own threads: a query answers mid-story…
      const during = (await server.query(GenerationSessionDocument, { id: startGeneration.id })).generationSession!;
      expect(during.status).toBe('GENERATING_STORY');
      // …and the story keeps streaming after it.
      const seenBefore = progress.events.length;
      const later = await progress.waitFor((event) => progress.events.indexOf(event) >= seenBefore && Boolean(event.generationProgress.storyTextDelta));
      expect(later.generationProgress.status).toBe('GENERATING_STORY');

      const { cancelGeneration } = await server.query(CancelGenerationDocument, { id: startGeneration.id });
      expect(cancelGeneration.status).toBe('CANCELLED');
      const events = await progress.done;
      expect(events.at(-1)!.generationProgress.status).toBe('CANCELLED');
      const after = (await server.query(GenerationSessionDocument, { id: startGeneration.id })).generationSession!;
      expect(after).toMatchObject({ status: 'CANCELLED', story: null });
    }
    // The second generation above had the model at once: the first one's generation stopped and gave back its turn.
  });
});

describe('choosing the text backend at start-up', () => {
  it('uses the embedded model when TEXT_BACKEND is unset and no Ollama answers, and says how to get a missing model', async () => {
    const missing = path.join(path.dirname(model.file), 'no-such-model.gguf');
    const server = await embeddedServer({ TEXT_BACKEND: undefined, OLLAMA_BASE_URL: 'http://127.0.0.1:9', EMBEDDED_MODEL_FILE: missing });
    expect(server.app.textBackend).toBe('embedded');

    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { textModel: 'failing' } });

    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox' } });
    const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    expect(events.at(-1)!.generationProgress).toMatchObject({
      status: 'FAILED',
      errorMessage: `The embedded story model is not downloaded yet: ${missing} is missing. Run \`story-agent setup\` or press Download on the page (or set EMBEDDED_MODEL_FILE to a GGUF model you have, or use Ollama: TEXT_BACKEND=ollama)`,
    });
  });

  it('uses Ollama when TEXT_BACKEND is unset and Ollama answers', async () => {
    ollama = await startFakeOllama();
    const server = await embeddedServer({ TEXT_BACKEND: undefined, OLLAMA_BASE_URL: ollama.url });
    expect(server.app.textBackend).toBe('ollama');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
