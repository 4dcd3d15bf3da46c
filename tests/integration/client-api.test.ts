import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parse } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { describe, expect } from 'vitest';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  GenerationSessionsDocument,
  StartGenerationDocument,
  StoriesDocument,
  StoryDocument,
  StoryListPageDocument,
  type StoryListPageQuery,
} from '../../src/client/generated/graphql.js';
import { freshStackTest, test as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

/** Stories straight into the database, at exact times (microseconds), so paging can be checked against ties and sub-millisecond order. */
async function insertStories(server: TestServer, createdAt: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [index, at] of createdAt.entries()) {
    const id = randomUUID();
    await server.database.sql(`INSERT INTO stories (id, title, prompt, story_text, created_at) VALUES ($1, $2, 'a prompt', 'Once upon a time.', $3)`, [
      id,
      `Story ${index}`,
      at,
    ]);
    ids.push(id);
  }
  return ids;
}

async function newestFirst(server: TestServer): Promise<string[]> {
  const rows = await server.database.sql<{ id: string }>(`SELECT id FROM stories WHERE story_text <> '' ORDER BY created_at DESC, id DESC`);
  return rows.map((row) => row.id);
}

async function readAllPages(server: TestServer, first: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const { storyConnection }: StoryListPageQuery = await server.query(StoryListPageDocument, { first, after });
    ids.push(...storyConnection.edges.map((edge) => edge.node.id));
    if (!storyConnection.pageInfo.hasNextPage) return ids;
    after = storyConnection.pageInfo.endCursor!;
  }
}

async function generate(server: TestServer, input: { prompt: string; pageCount?: number }) {
  const { startGeneration } = await server.query(StartGenerationDocument, { input });
  const events = (await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);
  return { sessionId: startGeneration.id, events, last: events.at(-1)! };
}

describe('storyConnection', () => {
  it('reads every story once, newest first, through ties and stories microseconds apart', async ({ startServer }) => {
    const server = await startServer();
    await insertStories(server, [
      '2026-01-01T00:00:00.000100Z',
      '2026-01-01T00:00:00.000200Z',
      '2026-01-01T00:00:00.000300Z',
      '2026-01-01T00:00:00.000300Z',
      '2026-01-01T00:00:00.000300Z',
      '2026-01-01T00:00:00.001000Z',
      '2026-01-02T00:00:00Z',
    ]);
    const expected = await newestFirst(server);
    for (const first of [1, 2, 3, 7, 100]) expect(await readAllPages(server, first), `first: ${first}`).toEqual(expected);
  });

  it('goes on where the last page ended when a story is saved between two page loads; totalCount counts it', async ({ startServer }) => {
    const server = await startServer();
    await insertStories(server, ['2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z', '2026-01-01T00:00:03Z', '2026-01-01T00:00:04Z']);
    const before = await newestFirst(server);

    const { storyConnection: page1 } = await server.query(StoryListPageDocument, { first: 2 });
    expect(page1.edges.map((edge) => edge.node.id)).toEqual(before.slice(0, 2));
    expect(page1.totalCount).toBe(4);
    expect(page1.pageInfo).toEqual({ hasNextPage: true, endCursor: page1.edges[1].cursor });

    const { last } = await generate(server, { prompt: 'a story saved between two page loads' });
    const { storyConnection: page2 } = await server.query(StoryListPageDocument, { first: 2, after: page1.pageInfo.endCursor });
    expect(page2.edges.map((edge) => edge.node.id)).toEqual(before.slice(2, 4));
    expect(page2.totalCount).toBe(5);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    // Offset paging, for comparison, shows the second page's first story twice.
    const { stories } = await server.query(StoriesDocument, { limit: 2, offset: 2 });
    expect(stories[0].id).toBe(before[1]);
    expect((await server.query(StoryListPageDocument, { first: 1 })).storyConnection.edges[0].node.id).toBe(last.storyId);
  });

  it('refuses a cursor it did not give for this list, and a page size outside 1..100, with BAD_USER_INPUT', async ({ server }) => {
    await generate(server, { prompt: 'a story for a cursor' });
    const { generationSessions } = await server.query(GenerationSessionsDocument, { first: 1 });
    const sessionCursor = generationSessions.pageInfo.endCursor!;
    const { storyConnection } = await server.query(StoryListPageDocument, { first: 1 });
    const storyCursor = storyConnection.pageInfo.endCursor!;
    const forged = Buffer.from(JSON.stringify(['story', 'yesterday', randomUUID()])).toString('base64url');
    for (const [variables, document] of [
      [{ first: 5, after: 'not-a-cursor' }, StoryListPageDocument],
      [{ first: 5, after: sessionCursor }, StoryListPageDocument],
      [{ first: 5, after: forged }, StoryListPageDocument],
      [{ first: 5, after: storyCursor }, GenerationSessionsDocument],
      [{ first: 0 }, StoryListPageDocument],
      [{ first: 101 }, GenerationSessionsDocument],
    ] as const) {
      const result = await server.request(document as typeof StoryListPageDocument, variables);
      expect(result.errors?.[0]?.extensions?.code, JSON.stringify(variables)).toBe('BAD_USER_INPUT');
    }
  });
});

describe('generationSessions', () => {
  it('lists sessions newest first, only those of the statuses asked for', async ({ startServer, a1111 }) => {
    const server = await startServer();
    const done = await generate(server, { prompt: 'a finished story' });
    a1111.options.latencyMs = 2_000;
    try {
      const { startGeneration: running } = await server.query(StartGenerationDocument, { input: { prompt: 'a story still being painted' } });
      const all = (await server.query(GenerationSessionsDocument, {})).generationSessions;
      expect(all.edges.map((edge) => edge.node.id)).toEqual([running.id, done.sessionId]);
      expect(all.totalCount).toBe(2);
      const active = (await server.query(GenerationSessionsDocument, { status: ['PENDING', 'GENERATING_STORY', 'GENERATING_IMAGES'] })).generationSessions;
      expect(active.edges.map((edge) => edge.node.id)).toEqual([running.id]);
      expect(active.totalCount).toBe(1);
      const completed = (await server.query(GenerationSessionsDocument, { status: ['COMPLETED'], first: 1 })).generationSessions;
      expect(completed.edges.map((edge) => edge.node)).toEqual([expect.objectContaining({ id: done.sessionId, status: 'COMPLETED', stageCode: 'COMPLETED' })]);
      await server.subscribe(GenerationProgressDocument, { sessionId: running.id }).done;
    } finally {
      a1111.options.latencyMs = 0;
    }
  });
});

describe.each([
  ['in-process', false],
  ['Redis', true],
] as const)('stage codes with the %s queue and progress bus', (_name, useRedis) => {
  freshStackTest.override('stack', { redis: useRedis, env: { JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '100' } });

  freshStackTest('go through a whole book, a retry included, and are what the session keeps', async ({ server, ollama }) => {
    ollama.options.failures.planner = { kind: 'http-error', status: 503, message: 'server busy' };
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who counts the stars', pageCount: 2 } });
    const subscription = server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    const retrying = await subscription.waitFor((event) => event.generationProgress.stageCode === 'RETRYING');
    expect(retrying.generationProgress.stage).toMatch(/^Retrying \(attempt 2 of 3\): .*HTTP 503: server busy/);
    const [saved] = await server.database.sql<{ stage_code: string }>('SELECT stage_code FROM generation_sessions WHERE id = $1', [startGeneration.id]);
    expect(saved.stage_code).toBe('RETRYING');
    delete ollama.options.failures.planner;

    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.every((event) => event.stageCode !== null)).toBe(true);
    const codes = events.map((event) => event.stageCode).filter((code, index, all) => code !== all[index - 1]);
    expect(codes.slice(codes.indexOf('RETRYING'))).toEqual(['RETRYING', 'PLANNING', 'WRITING_PAGE', 'PAINTING', 'COMPLETED']);
    const writing = events.filter((event) => event.stageCode === 'WRITING_PAGE').map((event) => event.stage);
    expect(new Set(writing)).toEqual(new Set(['Writing page 1 of 2', 'Writing page 2 of 2']));

    const { generationSession } = await server.query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession).toMatchObject({ status: 'COMPLETED', stage: 'Completed', stageCode: 'COMPLETED' });
  });
});

describe('warning codes', () => {
  it('name each picture an unreachable image backend could not paint, with its page', async ({ startServer }) => {
    const server = await startServer({ env: { AUTOMATIC1111_URL: 'http://127.0.0.1:9' } });
    const { sessionId, last } = await generate(server, { prompt: 'a kite that flies alone', pageCount: 2 });
    expect(last.status).toBe('COMPLETED');
    const details = last.warningDetails.map(({ code, pageIndex }) => ({ code, pageIndex }));
    expect(details).toEqual(
      expect.arrayContaining([
        { code: 'CHARACTER_NOT_PAINTED', pageIndex: null },
        { code: 'SCENE_NOT_PAINTED', pageIndex: 0 },
        { code: 'SCENE_NOT_PAINTED', pageIndex: 1 },
      ]),
    );
    expect(details).toHaveLength(3);
    expect(last.warningDetails.map((warning) => warning.message)).toEqual(last.warnings);
    expect(last.warnings[0]).toContain('127.0.0.1:9');
    const { generationSession } = await server.query(GenerationSessionDocument, { id: sessionId });
    expect(generationSession!.warningDetails).toEqual(last.warningDetails);
  });

  it('say IMAGES_OFF when no image backend is configured', async ({ startServer }) => {
    const server = await startServer({ env: { IMAGE_BACKEND: 'none', AUTOMATIC1111_URL: undefined } });
    const { last } = await generate(server, { prompt: 'a quiet story' });
    expect(last.warningDetails).toEqual([{ code: 'IMAGES_OFF', message: last.warnings[0], pageIndex: null }]);
  });
});

/** A GraphQL POST with headers fetch may not send (Host), over plain node:http. */
function postWithHeaders(server: TestServer, query: string, headers: Record<string, string>): Promise<{ data: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(JSON.parse(body) as { data: Record<string, unknown> }));
    });
    request.on('error', reject);
    request.end(JSON.stringify({ query }));
  });
}

const IMAGE_URL_QUERY = '{ stories(limit: 1) { combinedImage { url } } }';
const urlIn = (result: { data: Record<string, unknown> }) => (result.data.stories as { combinedImage: { url: string } }[])[0].combinedImage.url;

describe('image URLs', () => {
  it('are absolute by default, on the host the request reached, and fetch() gets the PNG with them', async ({ startServer }) => {
    const server = await startServer();
    const { last } = await generate(server, { prompt: 'a lighthouse keeper' });
    const { story } = await server.query(StoryDocument, { id: last.storyId! });
    for (const image of story!.images) {
      expect(image.url).toMatch(new RegExp(`^${server.url}/media/images/[0-9a-f-]{36}\\.png$`));
      const response = await fetch(image.url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await response.arrayBuffer()).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    }
    expect(urlIn(await postWithHeaders(server, IMAGE_URL_QUERY, { host: 'stories.test:8080' }))).toMatch(/^http:\/\/stories\.test:8080\/media\/images\//);
    // Forwarded headers count only from a trusted proxy (TRUST_PROXY), which this server has none of.
    const forwarded = { 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'https' };
    expect(urlIn(await postWithHeaders(server, IMAGE_URL_QUERY, forwarded))).toMatch(new RegExp(`^${server.url}/media/`));
    // A Host header that is no host name gives a path rather than a broken URL.
    expect(urlIn(await postWithHeaders(server, IMAGE_URL_QUERY, { host: 'bad host/' }))).toMatch(/^\/media\/images\//);

    // Over WebSocket, from the upgrade request's host.
    const progress = parse(
      `subscription ($sessionId: ID!) { generationProgress(sessionId: $sessionId) { session { story { combinedImage { url } } } } }`,
    ) as TypedDocumentNode<{ generationProgress: { session: { story: { combinedImage: { url: string } } } } }, { sessionId: string }>;
    const [event] = await server.subscribe(progress, { sessionId: last.sessionId }).done;
    expect(event.generationProgress.session.story.combinedImage.url).toMatch(new RegExp(`^${server.url}/media/images/`));
  });

  it('take X-Forwarded-Proto and -Host from a trusted proxy', async ({ startServer }) => {
    const server = await startServer({ env: { TRUST_PROXY: 'loopback' } });
    await generate(server, { prompt: 'a lighthouse keeper' });
    const result = await postWithHeaders(server, IMAGE_URL_QUERY, { 'x-forwarded-host': 'stories.example', 'x-forwarded-proto': 'https' });
    expect(urlIn(result)).toMatch(/^https:\/\/stories\.example\/media\/images\//);
  });

  it('start with PUBLIC_BASE_URL when it is set, whatever the request says', async ({ startServer }) => {
    const server = await startServer({ env: { PUBLIC_BASE_URL: 'https://stories.example/tales/' } });
    const { last } = await generate(server, { prompt: 'a lighthouse keeper' });
    const { story } = await server.query(StoryDocument, { id: last.storyId! });
    expect(story!.combinedImage!.url).toMatch(/^https:\/\/stories\.example\/tales\/media\/images\/[0-9a-f-]{36}\.png$/);
    expect(urlIn(await postWithHeaders(server, IMAGE_URL_QUERY, { host: 'other.test' }))).toBe(story!.combinedImage!.url);
  });

  it('are server-relative with PUBLIC_URLS=relative', async ({ startServer }) => {
    const server = await startServer({ env: { PUBLIC_URLS: 'relative' } });
    const { last } = await generate(server, { prompt: 'a lighthouse keeper' });
    const { story } = await server.query(StoryDocument, { id: last.storyId! });
    expect(story!.images.map((image) => image.url).every((url) => /^\/media\/images\/[0-9a-f-]{36}\.png$/.test(url))).toBe(true);
    expect((await fetch(`${server.url}${story!.combinedImage!.url}`)).status).toBe(200);
  });
});
