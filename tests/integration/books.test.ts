import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_PLAN, startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { createRedisNamespace, type TestRedisNamespace } from '../support/redis.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

type Progress = GenerationProgressSubscription['generationProgress'];

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let server: TestServer;
let redis: TestRedisNamespace | null;

const BACKBONES = [
  ['in-process', false],
  ['Redis', true],
] as const;

describe.each(BACKBONES)('a book of several pages with the %s queue and progress bus', (_name, useRedis) => {
  beforeEach(async () => {
    ollama = await startFakeOllama();
    a1111 = await startFakeAutomatic1111();
    redis = useRedis ? createRedisNamespace() : null;
    server = await startTestServer({
      env: {
        OLLAMA_BASE_URL: ollama.url,
        IMAGE_BACKEND: 'automatic1111',
        AUTOMATIC1111_URL: a1111.url,
        IMAGE_WIDTH: '128',
        IMAGE_HEIGHT: '96',
        ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix } : {}),
      },
    });
  });

  afterEach(async () => {
    await server.stop();
    await ollama.close();
    await a1111.close();
    await redis?.cleanup();
  });

  async function make(input: { prompt: string; pageCount?: number; style?: string }) {
    const { startGeneration } = await server.query(StartGenerationDocument, { input });
    const events: Progress[] = (await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map(
      (event) => event.generationProgress,
    );
    const { generationSession } = await server.query(GenerationSessionDocument, { id: startGeneration.id });
    return { events, session: generationSession! };
  }

  it('plans 6 pages, writes and paints each, and reads page by page with one character picture', async () => {
    const { events, session } = await make({ prompt: 'a lighthouse keeper who befriends a storm', pageCount: 6, style: 'watercolor' });
    expect(session).toMatchObject({ status: 'COMPLETED', warnings: [] });
    const story = session.story!;
    expect(story.title).toBe(DEFAULT_PLAN.title);
    expect(story.style).toBe('watercolor');
    expect(story.pages.map((page) => page.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(story.pages.map((page) => page.sceneDescription)).toEqual(DEFAULT_PLAN.pages.slice(0, 6).map((page) => page.scene));
    for (const page of story.pages) {
      expect(page.text).toMatch(/^Mara had kept the lighthouse/);
      expect(page.backgroundImage).toMatchObject({ imageType: 'BACKGROUND', pageIndex: page.index, width: 128, height: 96 });
      expect(page.combinedImage).toMatchObject({ imageType: 'COMBINED', pageIndex: page.index });
      const png = await fetch(page.combinedImage!.url);
      expect((await sharp(Buffer.from(await png.arrayBuffer())).metadata()).width).toBe(128);
    }
    expect(story.images.filter((image) => image.imageType === 'CHARACTER')).toEqual([expect.objectContaining({ pageIndex: null })]);
    expect(story.images).toHaveLength(13);
    // The first contract's fields mean page 0's, and storyText is the pages' text joined by blank lines.
    expect(story.storyText).toBe(story.pages.map((page) => page.text).join('\n\n'));
    expect(story.backgroundImage!.id).toBe(story.pages[0].backgroundImage!.id);
    expect(story.combinedImage!.id).toBe(story.pages[0].combinedImage!.id);
    expect(story.backgroundDescription).toBe(story.pages[0].sceneDescription);
    // One planner call, one story-agent call per page; six scenes and one character painted.
    expect(ollama.requests.map((request) => request.agent)).toEqual(['planner', ...Array(6).fill('story')]);
    expect(a1111.calls).toHaveLength(7);
    // Each composite got the light image-to-image pass (HARMONIZE_STRENGTH's default), at the picture size.
    expect(a1111.img2imgCalls.map((call) => [call.denoisingStrength, call.initWidth, call.initHeight, call.width, call.height])).toEqual(
      Array(6).fill([0.3, 128, 96, 128, 96]),
    );
    expect(a1111.img2imgCalls.every((call) => call.prompt.startsWith(DEFAULT_PLAN.characterSheet))).toBe(true);
    // Progress: text events carry their page; deltas joined are storyText; the bar never goes back.
    const textEvents = events.filter((event) => event.storyTextDelta && !event.storyTextReset);
    expect(new Set(textEvents.map((event) => event.pageIndex))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    expect(textEvents.map((event) => event.storyTextDelta).join('')).toBe(story.storyText);
    const percents = events.map((event) => event.progressPercentage);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
  });

  it('leaves composites as they are with HARMONIZE_STRENGTH=0', async () => {
    await server.stop();
    server = await startTestServer({
      env: {
        OLLAMA_BASE_URL: ollama.url,
        IMAGE_BACKEND: 'automatic1111',
        AUTOMATIC1111_URL: a1111.url,
        IMAGE_WIDTH: '128',
        IMAGE_HEIGHT: '96',
        HARMONIZE_STRENGTH: '0',
        ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix } : {}),
      },
    });
    const { session } = await make({ prompt: 'a fox in the snow', pageCount: 2 });
    expect(session.status).toBe('COMPLETED');
    expect(session.story!.pages.every((page) => page.combinedImage !== null)).toBe(true);
    expect(a1111.img2imgCalls).toEqual([]);
  });

  it('keeps the first contract when pageCount is left out: one page, one scene, one composite', async () => {
    const { session } = await make({ prompt: 'a fox in the snow' });
    const story = session.story!;
    expect(session.status).toBe('COMPLETED');
    expect(story.pages).toHaveLength(1);
    expect(story.storyText).toBe(story.pages[0].text);
    expect(story.images.map((image) => image.imageType).sort()).toEqual(['BACKGROUND', 'CHARACTER', 'COMBINED']);
    expect(story.backgroundImage!.id).toBe(story.pages[0].backgroundImage!.id);
  });

  it.each([0, 13])('rejects pageCount %i with BAD_USER_INPUT', async (pageCount) => {
    const result = await server.request(StartGenerationDocument, { input: { prompt: 'a fox', pageCount } });
    expect(result.data).toBeNull();
    expect(result.errors![0]).toMatchObject({
      message: `pageCount must be a whole number from 1 to 12; got ${pageCount}.`,
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(ollama.requests).toEqual([]);
  });
});
