import { Redis } from 'ioredis';
import sharp from 'sharp';
import { describe, expect } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  StoryDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES } from '../support/fake-ollama.js';
import { freshStackTest as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';
import { SINGLE_USER } from '../../src/services/auth/viewer.js';

type Progress = GenerationProgressSubscription['generationProgress'];

/** Every behaviour here holds for both: the default in-process queue and bus, and BullMQ + Redis pub/sub. */
const BACKBONES = [
  ['in-process', false],
  ['Redis', true],
] as const;

describe.each(BACKBONES)('with the %s queue and progress bus', (_name, useRedis) => {
  it.override('stack', { redis: useRedis, env: { IMAGE_BACKEND: 'automatic1111', IMAGE_WIDTH: '128', IMAGE_HEIGHT: '96' } });

  async function start(server: TestServer, prompt = 'a lighthouse keeper who befriends a storm', extra: { style?: string; seed?: number } = {}) {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt, ...extra } });
    return startGeneration;
  }

  async function follow(server: TestServer, sessionId: string): Promise<Progress[]> {
    const events = await server.subscribe(GenerationProgressDocument, { sessionId }).done;
    return events.map((event) => event.generationProgress);
  }

  function expectNeverDecreasing(events: Progress[]) {
    const percents = events.map((event) => event.progressPercentage);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
  }

  describe('a generation with every backend up', () => {
    it('streams the story, paints three images and completes, with progress that never goes back', async ({ server, ollama, a1111 }) => {
      ollama.options.tokenDelayMs.story = 5;
      const session = await start(server, 'a lighthouse keeper who befriends a storm', { style: 'watercolor', seed: 42 });
      expect(session.status).toBe('PENDING');

      const events = await follow(server, session.id);
      expect(events[0].sessionId).toBe(session.id);
      const statuses = [...new Set(events.map((event) => event.status))];
      expect(statuses.filter((status) => status !== 'PENDING')).toEqual(['GENERATING_STORY', 'GENERATING_IMAGES', 'COMPLETED']);
      expectNeverDecreasing(events);
      expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, warnings: [] });

      const deltas = events.filter((event) => event.storyTextDelta).map((event) => event.storyTextDelta);
      expect(deltas.length).toBeGreaterThan(3);
      expect(events.filter((event) => event.storyTextDelta).every((event) => event.status === 'GENERATING_STORY')).toBe(true);
      const streamed = deltas.join('');
      expect(streamed).not.toContain('Title:');

      const storyPercents = events.filter((event) => event.status === 'GENERATING_STORY').map((event) => event.progressPercentage);
      expect(Math.min(...storyPercents)).toBeGreaterThanOrEqual(5);
      // Pictures are painted while the text is written, so the bar may be far along before the text is done.
      expect(Math.max(...storyPercents)).toBeLessThan(100);

      const { generationSession } = await server.query(GenerationSessionDocument, { id: session.id });
      const story = generationSession!.story!;
      expect(story.title).toBe('The Lighthouse Keeper and the Storm');
      expect(story.storyText).toBe(streamed.trim());
      expect(story.storyText.startsWith('Mara had kept the lighthouse')).toBe(true);
      expect(story.characterDescription).toBe(DEFAULT_PLAN.characterSheet);
      expect(story.backgroundDescription).toBe(DEFAULT_PLAN.pages[0].scene);
      expect(events.at(-1)!.storyId).toBe(story.id);

      expect(story.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
      expect(story.characterImage).toMatchObject({ width: 128, height: 96, seed: 42 });
      expect(story.backgroundImage).toMatchObject({ width: 128, height: 96, seed: 43 });
      expect(story.characterImage!.promptUsed).toBe(`${DEFAULT_REPLIES.character}, watercolor style`);
      for (const image of story.images) {
        const response = await fetch(image.url);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('image/png');
        const metadata = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
        expect({ format: metadata.format, width: metadata.width, height: metadata.height }).toEqual({ format: 'png', width: 128, height: 96 });
      }

      // The planner ran first; the story agent wrote the one page from its plan.
      expect(ollama.requests.map((request) => request.agent)).toEqual(['planner', 'story']);
      expect(ollama.requests[1].messages.at(-1)!.content).toContain(DEFAULT_PLAN.pages[0].outline);
      expect(a1111.calls.map((call) => call.seed).sort()).toEqual([42, 43]);
    });

    it('gives a subscriber who joins after completion the final state with the whole text, then completes the stream', async ({ server }) => {
      const session = await start(server);
      await follow(server, session.id);

      const late = await follow(server, session.id);
      expect(late).toHaveLength(1);
      expect(late[0]).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, storyTextReset: true });
      const { story } = await server.query(StoryDocument, { id: late[0].storyId! });
      expect(late[0].storyTextDelta).toBe(story!.storyText);
    });

    it('gives a subscriber who joins mid-story the text so far in its first event, then the rest without gaps', async ({ server, ollama }) => {
      ollama.options.tokenDelayMs.story = 15;
      const session = await start(server);
      const first = server.subscribe(GenerationProgressDocument, { sessionId: session.id });
      await first.waitFor((event) => (event.generationProgress.storyTextDelta ?? '').length > 0 && event.generationProgress.progressPercentage >= 10);
      await new Promise((resolve) => setTimeout(resolve, 100));

      const late = (await follow(server, session.id)).filter((event) => event.storyTextDelta);
      const all = (await first.done).map((event) => event.generationProgress);
      const lateText = late.map((event) => event.storyTextDelta).join('');
      const fullText = all.map((event) => event.storyTextDelta ?? '').join('');
      expect(late.length).toBeGreaterThan(1);
      expect(lateText).toBe(fullText);
    });

    it('cancels a running generation: the model call is aborted and the session ends CANCELLED', async ({ server, ollama }) => {
      ollama.options.tokenDelayMs.story = 50;
      const session = await start(server);
      const subscription = server.subscribe(GenerationProgressDocument, { sessionId: session.id });
      await subscription.waitFor((event) => (event.generationProgress.storyTextDelta ?? '') !== '');

      const { cancelGeneration } = await server.query(CancelGenerationDocument, { id: session.id });
      expect(cancelGeneration.status).toBe('CANCELLED');
      const events = (await subscription.done).map((event) => event.generationProgress);
      expect(events.at(-1)!.status).toBe('CANCELLED');

      await expect.poll(() => ollama.abandoned).toContain('story');
      const { generationSession } = await server.query(GenerationSessionDocument, { id: session.id });
      expect(generationSession).toMatchObject({ status: 'CANCELLED', story: null });
    });
  });

  it.runIf(useRedis)('lets go of the Redis channel as soon as a subscriber leaves, without waiting for the next event', async ({ server, ollama, redis }) => {
    ollama.options.firstTokenDelayMs.story = 5000;
    const session = await start(server);
    const subscription = server.subscribe(GenerationProgressDocument, { sessionId: session.id });
    await subscription.waitFor(() => true);
    const channel = `${redis!.prefix}:progress:${session.id}:events`;
    const watcher = new Redis(redis!.url);
    try {
      const listeners = async () => Number(((await watcher.pubsub('NUMSUB', channel)) as [string, number])[1]);
      expect(await listeners()).toBe(1);
      subscription.dispose();
      await expect.poll(listeners, { timeout: 2000 }).toBe(0);
    } finally {
      watcher.disconnect();
      await server.query(CancelGenerationDocument, { id: session.id });
    }
  });

  describe('when a dependency fails', () => {
    it('fails the session with an actionable message when Ollama is not reachable', async ({ server, ollama }) => {
      await ollama.close();
      const session = await start(server);
      const events = await follow(server, session.id);
      expect(events.at(-1)).toMatchObject({ status: 'FAILED', storyId: null });
      expect(events.at(-1)!.errorMessage).toBe(
        `Ollama is not reachable at ${ollama.url}: start it with \`ollama serve\` (or set OLLAMA_BASE_URL to where it runs)`,
      );
      const { generationSession } = await server.query(GenerationSessionDocument, { id: session.id });
      expect(generationSession).toMatchObject({ status: 'FAILED', story: null });
    });

    it('fails with the model name and the pull command when Ollama lacks the model', async ({ server, ollama }) => {
      ollama.options.model = 'some-other-model';
      const session = await start(server);
      const events = await follow(server, session.id);
      expect(events.at(-1)!.errorMessage).toContain('does not have the model "llama3.2": run `ollama pull llama3.2`');
    });

    it('fails when Ollama answers an error, naming the URL and model', async ({ server, ollama }) => {
      ollama.options.failures.story = { kind: 'http-error', status: 500, message: 'CUDA out of memory' };
      const session = await start(server);
      const events = await follow(server, session.id);
      expect(events.at(-1)!.status).toBe('FAILED');
      expect(events.at(-1)!.errorMessage).toMatch(
        new RegExp(`Ollama at ${ollama.url} failed while writing the story with model llama3.2 \\(HTTP 500: CUDA out of memory\\)`),
      );
    });

    it.for([['drop-mid-stream' as const], ['end-without-done' as const]])(
      'fails without saving a half-written story when the stream is cut (%s)',
      async ([kind], { server, ollama }) => {
        ollama.options.failures.story = { kind };
        const session = await start(server);
        const events = await follow(server, session.id);
        expect(events.at(-1)!.status).toBe('FAILED');
        expect(events.at(-1)!.errorMessage).toContain(ollama.url);
        expect(events.some((event) => event.storyTextDelta)).toBe(true);
        const { generationSession } = await server.query(GenerationSessionDocument, { id: session.id });
        expect(generationSession!.story).toBeNull();
        const stories = await server.app.stories.list(100, 0, SINGLE_USER);
        expect(stories).toHaveLength(0);
      },
    );

    it('completes with the story and a warning when the image server fails', async ({ server, a1111 }) => {
      a1111.options.failWith = { status: 500, body: '{"error":"RuntimeError","detail":"out of VRAM"}' };
      const session = await start(server);
      const events = await follow(server, session.id);
      const last = events.at(-1)!;
      expect(last.status).toBe('COMPLETED');
      expect(last.warnings.some((warning) => warning.includes(`AUTOMATIC1111 at ${a1111.url} answered HTTP 500`))).toBe(true);
      const { story } = await server.query(StoryDocument, { id: last.storyId! });
      expect(story!.storyText).toContain('Mara');
      expect(story!.images).toHaveLength(0);
    });

    it('keeps the image that did succeed when the other fails, and skips the composite', async ({ server, a1111 }) => {
      a1111.options.failWith = { status: 503, body: 'busy' };
      a1111.options.failWhen = (call) => call.prompt.includes('lighthouse on a rocky point');
      const session = await start(server);
      const last = (await follow(server, session.id)).at(-1)!;
      expect(last.status).toBe('COMPLETED');
      const { story } = await server.query(StoryDocument, { id: last.storyId! });
      expect(story!.images.map((image) => image.imageType)).toEqual(['CHARACTER']);
      expect(last.warnings).toEqual([`The background picture could not be painted: AUTOMATIC1111 at ${a1111.url} answered HTTP 503 to txt2img: busy`]);
    });

    it('completes with a warning when the image server is not reachable', async ({ server, a1111 }) => {
      await a1111.close();
      const session = await start(server);
      const last = (await follow(server, session.id)).at(-1)!;
      expect(last.status).toBe('COMPLETED');
      expect(last.warnings.join('\n')).toContain(`AUTOMATIC1111 at ${a1111.url} is not reachable`);
    });
  });
});
