import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { WebSocketCloseCode } from '../../src/http/close-codes.js';
import type { FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_REPLIES, type FakeOllama } from '../support/fake-ollama.js';
import type { ProcessRole, ServerProcess } from '../support/processes.js';
import { startScaledOutStack, type ScaledOutStack } from '../support/scaled-out-stack.js';
import { createPrivateRedis, createRedisNamespace } from '../support/redis.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Several API and worker processes, as `npm run start:api` / `start:worker`
 * start them, sharing one PostgreSQL database and one Redis key prefix.
 */
type Progress = GenerationProgressSubscription['generationProgress'];

let stack: ScaledOutStack;
let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let database: TestDatabase;
let processes: ServerProcess[];

beforeEach(async () => {
  stack = await startScaledOutStack('scale');
  ({ ollama, a1111, database, processes } = stack);
});

afterEach(() => stack.close());

const start = (role: ProcessRole, env?: Record<string, string>) => stack.start(role, env);
const client = (server: ServerProcess) => stack.client(server);

async function storyRows(): Promise<number> {
  const [{ count }] = await database.sql<{ count: number }>('SELECT count(*)::int AS count FROM stories');
  return count;
}

function textOf(events: Progress[]): string {
  let text = '';
  for (const event of events) {
    if (event.storyTextReset) text = '';
    text += event.storyTextDelta ?? '';
  }
  return text;
}

describe('two API processes and one worker', () => {
  it('shows a subscriber on one API every event of a generation started on the other and run by the worker', async () => {
    ollama.options.tokenDelayMs.story = 5;
    const [apiA, apiB] = await Promise.all([start('api'), start('api')]);
    await start('worker');

    const { startGeneration } = await client(apiB).query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const events = (await client(apiA).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);

    const statuses = events.map((event) => event.status).filter((status, index, all) => status !== all[index - 1]);
    expect(statuses.filter((status) => status !== 'PENDING')).toEqual(['GENERATING_STORY', 'GENERATING_IMAGES', 'COMPLETED']);
    const percents = events.map((event) => event.progressPercentage);
    expect(percents).toEqual([...percents].sort((x, y) => x - y));
    expect(textOf(events).trim()).toBe(DEFAULT_REPLIES.story.split('\n').slice(2).join('\n'));
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, warnings: [] });

    // A third view, through the other API, agrees; images are served by an API process.
    const { generationSession } = await client(apiB).query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession!.story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
    const png = await fetch(generationSession!.story!.combinedImage!.url);
    expect(png.headers.get('content-type')).toBe('image/png');
  });

  it('cancels, from an API process, a generation running on the worker', async () => {
    ollama.options.tokenDelayMs.story = 100;
    const api = await start('api');
    await start('worker');
    const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'a slow story' } });
    const subscription = client(api).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await subscription.waitFor((event) => (event.generationProgress.storyTextDelta ?? '') !== '');
    await client(api).query(CancelGenerationDocument, { id: startGeneration.id });
    expect((await subscription.done).at(-1)!.generationProgress.status).toBe('CANCELLED');
    await expect.poll(() => ollama.abandoned).toContain('story');
  });
});

describe('an API process told to stop', () => {
  it('closes open subscriptions with 1001 (going away) and exits 0 on SIGTERM', async () => {
    ollama.options.tokenDelayMs.story = 200;
    const api = await start('api');
    const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'a long story' } });
    const closed = new Promise<number>((resolve) => {
      const socket = new WebSocket(`${api.url!.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'connection_ack') {
          socket.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload: { query: 'subscription ($id: ID!) { generationProgress(sessionId: $id) { status } }', variables: { id: startGeneration.id } },
            }),
          );
          void api.kill('SIGTERM');
        }
      });
      socket.on('close', (code) => resolve(code));
    });
    expect(await closed).toBe(WebSocketCloseCode.GoingAway);
    expect(await api.exited).toBe(0);
  });
});

describe('a worker that dies', () => {
  it.each([
    ['mid-story', (event: Progress) => (event.storyTextDelta ?? '') !== '' && event.status === 'GENERATING_STORY'],
    ['mid-images', (event: Progress) => event.stageCode === 'PAINTING'],
  ] as const)('is replaced when killed with SIGKILL %s: a new worker finishes, one story row, images complete', async (_when, moment) => {
    ollama.options.tokenDelayMs.story = 20;
    a1111.options.latencyMs = 1000;
    const api = await start('api');
    const doomed = await start('worker');
    const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const subscription = client(api).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await subscription.waitFor((event) => moment(event.generationProgress));
    await doomed.kill('SIGKILL');
    a1111.options.latencyMs = 0;

    await start('worker');
    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
    expect(textOf(events).trim()).toBe(DEFAULT_REPLIES.story.split('\n').slice(2).join('\n'));
    expect(await storyRows()).toBe(1);
    const { generationSession } = await client(api).query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession!.story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
  });

  it('is replaced when killed with SIGKILL mid-book: the new worker keeps the finished pages and ends with exactly 6 pages and one character picture', async () => {
    ollama.options.tokenDelayMs.story = 20;
    a1111.options.latencyMs = 400;
    const api = await start('api');
    const doomed = await start('worker');
    const { startGeneration } = await client(api).query(StartGenerationDocument, {
      input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount: 6 },
    });
    const subscription = client(api).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    // Killed while page 3 is being written, with pages 1 and 2 saved.
    await subscription.waitFor((event) => event.generationProgress.pageIndex === 2 && (event.generationProgress.storyTextDelta ?? '') !== '');
    await doomed.kill('SIGKILL');
    a1111.options.latencyMs = 0;
    const storyAgentCallsBefore = ollama.requests.filter((request) => request.agent === 'story').length;

    await start('worker');
    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
    expect(await storyRows()).toBe(1);
    const { generationSession } = await client(api).query(GenerationSessionDocument, { id: startGeneration.id });
    const story = generationSession!.story!;
    expect(story.pages.map((page) => page.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(story.pages.every((page) => page.text.startsWith('Mara had kept'))).toBe(true);
    expect(story.images.filter((image) => image.imageType === 'CHARACTER')).toHaveLength(1);
    expect(story.pages.every((page) => page.combinedImage !== null)).toBe(true);
    // One plan; the new worker wrote only pages 3 to 6 (the page cut off mid-stream again).
    expect(ollama.requests.filter((request) => request.agent === 'planner')).toHaveLength(1);
    expect(ollama.requests.filter((request) => request.agent === 'story').length - storyAgentCallsBefore).toBe(4);
  });

  it('exits 0 on SIGTERM and hands its job to another worker, which finishes it', async () => {
    ollama.options.tokenDelayMs.story = 20;
    const api = await start('api');
    const leaving = await start('worker');
    const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const subscription = client(api).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await subscription.waitFor((event) => (event.generationProgress.storyTextDelta ?? '') !== '');

    expect(await leaving.kill('SIGTERM')).toBe(0);
    await start('worker');
    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('COMPLETED');
    expect(await storyRows()).toBe(1);
  });
});

describe('Redis restarted during a run', () => {
  /** Runs the test against a Redis server of its own, which it may stop and start. */
  async function withPrivateRedis(test: (redisServer: Awaited<ReturnType<typeof createPrivateRedis>>) => Promise<void>): Promise<void> {
    const privateRedis = await createPrivateRedis();
    await privateRedis.start();
    try {
      stack.redis = { ...createRedisNamespace(privateRedis.url), cleanup: async () => {} };
      await test(privateRedis);
    } finally {
      await Promise.all(processes.splice(0).map((child) => child.kill('SIGKILL')));
      await privateRedis.stop();
    }
  }

  async function completes(api: ServerProcess, sessionId: string): Promise<void> {
    await expect
      .poll(async () => (await client(api).query(GenerationSessionDocument, { id: sessionId })).generationSession!.status, {
        timeout: 20_000,
        interval: 200,
      })
      .toBe('COMPLETED');
  }

  it('loses no queued session: a job that vanished with Redis is queued again from the database', () =>
    withPrivateRedis(async (redisServer) => {
      const api = await start('api');
      const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'queued while Redis restarts' } });
      // Redis keeps nothing on disk here: the waiting job is gone after this.
      await redisServer.stop();
      await redisServer.start();
      await start('worker');
      await completes(api, startGeneration.id);
      expect(await storyRows()).toBe(1);
    }));

  it('loses no running session: the generation completes once Redis is back', () =>
    withPrivateRedis(async (redisServer) => {
      ollama.options.tokenDelayMs.story = 20;
      a1111.options.latencyMs = 800;
      const api = await start('api');
      await start('worker');
      const { startGeneration } = await client(api).query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
      const subscription = client(api).subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
      await subscription.waitFor((event) => (event.generationProgress.storyTextDelta ?? '') !== '');

      await redisServer.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await redisServer.start();

      // Events published while the API was cut off are lost to it: its stream ends rather than go on with a gap.
      await expect(subscription.done).resolves.toBeDefined();
      await completes(api, startGeneration.id);
      expect(await storyRows()).toBe(1);
      const { generationSession } = await client(api).query(GenerationSessionDocument, { id: startGeneration.id });
      expect(generationSession!.story!.images).toHaveLength(3);
    }));
});
