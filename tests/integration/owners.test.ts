import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  CancelGenerationDocument,
  DeleteStoryDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  GenerationSessionsDocument,
  StoriesDocument,
  StoryDocument,
  StoryListPageDocument,
} from '../../src/client/generated/graphql.js';
import { apiKeyCommand, createApiKey } from '../support/api-keys.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { createTestClient, type TestClient } from '../support/test-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let server: TestServer;
let alice: TestClient;
let bob: TestClient;
let aliceKey: string;

beforeAll(async () => {
  ollama = await startFakeOllama();
  a1111 = await startFakeAutomatic1111();
  server = await startTestServer({
    env: {
      AUTH_MODE: 'api-key',
      OLLAMA_BASE_URL: ollama.url,
      AUTOMATIC1111_URL: a1111.url,
      IMAGE_WIDTH: '64',
      IMAGE_HEIGHT: '64',
      MAX_ACTIVE_GENERATIONS_PER_OWNER: '2',
    },
  });
  aliceKey = await createApiKey(server.database.url, 'alice');
  alice = createTestClient(server.url, { apiKey: aliceKey });
  bob = createTestClient(server.url, { apiKey: await createApiKey(server.database.url, 'bob') });
}, 60_000);

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await server?.stop();
  await ollama?.close();
  await a1111?.close();
});

describe('AUTH_MODE=api-key', () => {
  it('creates keys that are stored hashed', async () => {
    expect(aliceKey).toMatch(/^sa_[\w-]{43}$/);
    const rows = await server.database.sql<{ owner_id: string; key_hash: string }>('SELECT owner_id, key_hash FROM api_keys ORDER BY owner_id');
    expect(rows.map((row) => row.owner_id)).toEqual(['alice', 'bob']);
    expect(rows.every((row) => /^[0-9a-f]{64}$/.test(row.key_hash) && row.key_hash !== aliceKey)).toBe(true);
  });

  it('refuses HTTP requests without a key or with an unknown one as UNAUTHENTICATED (401)', async () => {
    for (const headers of [{}, { authorization: 'Bearer sa_not-a-key' }] as Record<string, string>[]) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query: '{ stories { id } }' }),
      });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
  });

  it('closes a WebSocket without a key with 4403', async () => {
    const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const closed = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: '{ stories { id } }' }, { next: () => undefined, error: resolve, complete: () => resolve('completed') });
    });
    await client.dispose();
    expect((closed as { code: number }).code).toBe(4403);
  });

  it("keeps each owner's stories and sessions to themselves; another's read like unknown ids", async () => {
    const { startGeneration } = await alice.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const events = await alice.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const storyId = events.at(-1)!.generationProgress.storyId!;
    expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');

    expect((await alice.query(StoriesDocument, { limit: 10 })).stories.map((story) => story.id)).toEqual([storyId]);
    expect((await bob.query(StoriesDocument, { limit: 10 })).stories).toEqual([]);
    expect((await bob.query(StoryDocument, { id: storyId })).story).toBeNull();
    expect((await bob.query(GenerationSessionDocument, { id: startGeneration.id })).generationSession).toBeNull();

    const unknown = '00000000-0000-4000-8000-000000000000';
    const cancelOther = await bob.request(CancelGenerationDocument, { id: startGeneration.id });
    const cancelUnknown = await bob.request(CancelGenerationDocument, { id: unknown });
    expect(cancelOther.errors![0].message.replace(startGeneration.id, 'ID')).toBe(cancelUnknown.errors![0].message.replace(unknown, 'ID'));
    const deleteOther = await bob.request(DeleteStoryDocument, { id: storyId });
    expect(deleteOther.errors![0].message).toBe(`No story has the id ${storyId}`);
    await expect(bob.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).rejects.toThrow(/No generation session has the id/);
    expect((await alice.query(StoryDocument, { id: storyId })).story!.id).toBe(storyId);
  });

  it("lists, by cursor, only the viewer's own stories and sessions", async () => {
    const aliceStories = (await alice.query(StoryListPageDocument, { first: 10 })).storyConnection;
    expect(aliceStories.totalCount).toBe(1);
    expect((await bob.query(StoryListPageDocument, { first: 10 })).storyConnection).toEqual({
      edges: [],
      pageInfo: { hasNextPage: false, endCursor: null },
      totalCount: 0,
    });
    const aliceSessions = (await alice.query(GenerationSessionsDocument, {})).generationSessions;
    expect(aliceSessions.totalCount).toBe(1);
    expect((await bob.query(GenerationSessionsDocument, {})).generationSessions.totalCount).toBe(0);
    // Alice's cursor is a place in a list; it shows Bob nothing of hers.
    const { startGeneration: bobs } = await bob.query(StartGenerationDocument, { input: { prompt: 'a story of Bob' } });
    await bob.subscribe(GenerationProgressDocument, { sessionId: bobs.id }).done;
    const after = aliceSessions.pageInfo.endCursor;
    const bobAfterAlice = (await bob.query(GenerationSessionsDocument, { first: 10, after })).generationSessions;
    expect(bobAfterAlice.edges.every((edge) => edge.node.id !== aliceSessions.edges[0].node.id)).toBe(true);
    expect((await bob.query(GenerationSessionsDocument, {})).generationSessions.totalCount).toBe(1);
    expect((await alice.query(GenerationSessionsDocument, {})).generationSessions.totalCount).toBe(1);
  });

  it('serves pictures only through signed URLs', async () => {
    const [story] = (await alice.query(StoriesDocument, { limit: 1 })).stories;
    // Absolute, so a script can fetch it as it is.
    expect(story.images[0].url.startsWith(`${server.url}/media/images/`)).toBe(true);
    const url = new URL(story.images[0].url);
    expect(url.searchParams.get('signature')).toMatch(/^[\w-]{43}$/);
    expect((await fetch(url)).status).toBe(200);
    const unsigned = new URL(url.pathname, server.url);
    expect((await fetch(unsigned)).status).toBe(403);
    url.searchParams.set('signature', 'A'.repeat(43));
    expect((await fetch(url)).status).toBe(403);
  });

  it('refuses a third running generation with RATE_LIMITED, naming the limit', async () => {
    a1111.options.latencyMs = 5_000;
    const started = [];
    for (let index = 0; index < 2; index += 1) {
      started.push((await alice.query(StartGenerationDocument, { input: { prompt: `a story ${index}` } })).startGeneration.id);
    }
    const third = await alice.request(StartGenerationDocument, { input: { prompt: 'one too many' } });
    expect(third.errors![0]).toMatchObject({
      message: 'You have 2 generations running or queued; the limit is 2. Wait for one to finish or cancel one.',
      extensions: { code: 'RATE_LIMITED' },
    });
    // Another owner has a limit of their own.
    expect((await bob.request(StartGenerationDocument, { input: { prompt: 'bob too' } })).errors).toBeUndefined();
    for (const id of started) await alice.query(CancelGenerationDocument, { id });
    a1111.options.latencyMs = 0;
  });

  it('revokes keys from the command line', async () => {
    const { code, stdout } = await apiKeyCommand(server.database.url, 'revoke', 'alice');
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'Revoked 1 key.\n' });
    const refused = await alice.request(StoriesDocument, { limit: 1 });
    expect(refused.errors![0].extensions!.code).toBe('UNAUTHENTICATED');
  });
});
