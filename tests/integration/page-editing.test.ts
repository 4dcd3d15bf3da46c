import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  RegeneratePageImageDocument,
  StartGenerationDocument,
  StoryDocument,
  UpdatePageTextDocument,
  type GenerationProgressSubscription,
  type StoryFieldsFragment,
} from '../../src/client/generated/graphql.js';
import { hashApiKey } from '../../src/services/auth/api-keys.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES } from '../support/fake-ollama.js';
import { freshStackTest, test as it } from '../support/fixtures.js';
import { createTestClient, type TestClient } from '../support/test-client.js';
import type { TestServer } from '../support/test-server.js';

/**
 * Editing a saved book over real HTTP, WebSocket and PostgreSQL, with the fake
 * Ollama and AUTOMATIC1111: regeneratePageImage and updatePageText.
 */
type Progress = GenerationProgressSubscription['generationProgress'];
type Client = Pick<TestClient, 'query' | 'request' | 'subscribe'>;

async function makeBook(client: Client, pageCount = 3): Promise<StoryFieldsFragment> {
  const { startGeneration } = await client.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount } });
  const events = await client.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  expect(events.at(-1)!.generationProgress).toMatchObject({ status: 'COMPLETED', warnings: [] });
  const { generationSession } = await client.query(GenerationSessionDocument, { id: startGeneration.id });
  return generationSession!.story!;
}

async function storyOf(client: Client, id: string): Promise<StoryFieldsFragment> {
  const { story } = await client.query(StoryDocument, { id });
  return story!;
}

async function repaint(client: Client, variables: { storyId: string; pageIndex: number; seed?: number; redescribe?: boolean }) {
  const { regeneratePageImage: session } = await client.query(RegeneratePageImageDocument, variables);
  const events: Progress[] = (await client.subscribe(GenerationProgressDocument, { sessionId: session.id }).done).map((event) => event.generationProgress);
  return { session, events };
}

/** Each page's picture ids and URLs, and the character's. */
function picturesOf(story: StoryFieldsFragment) {
  return {
    character: story.characterImage?.id,
    pages: story.pages.map((page) => ({ background: page.backgroundImage?.id, combined: page.combinedImage?.id })),
    urls: story.pages.map((page) => [page.backgroundImage?.url, page.combinedImage?.url]),
  };
}

async function status(url: string | undefined): Promise<number> {
  if (!url) throw new Error('the picture has no URL');
  return (await fetch(url)).status;
}

async function sessionCount(server: TestServer): Promise<number> {
  const [{ count }] = await server.database.sql<{ count: number }>('SELECT count(*)::int AS count FROM generation_sessions');
  return count;
}

describe('regeneratePageImage', () => {
  it("paints only that page again, with the same character, and removes that page's old pictures and files", async ({ server, a1111 }) => {
    const book = await makeBook(server);
    const before = picturesOf(book);
    const callsBefore = a1111.calls.length;
    const { session, events } = await repaint(server, { storyId: book.id, pageIndex: 1, seed: 99 });
    expect(session).toMatchObject({ status: 'PENDING', kind: 'PAGE_REPAINT', pageIndex: 1, progressPercentage: 0 });

    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, warnings: [], storyId: book.id, pageIndex: 1 });
    expect(events.every((event) => event.pageIndex === 1 && event.storyTextDelta === null)).toBe(true);
    expect(events.map((event) => event.stageCode)).toContain(STAGE.repaintingPage.code);
    const percents = events.map((event) => event.progressPercentage);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    // One picture painted: page 1's scene. The character is cut out of its saved picture.
    expect(a1111.calls.slice(callsBefore).map((call) => call.prompt)).toEqual([expect.stringContaining(DEFAULT_PLAN.pages[1].scene)]);
    expect(a1111.calls.at(-1)!.seed).toBe(99);

    const after = await storyOf(server, book.id);
    const now = picturesOf(after);
    expect(now.character).toBe(before.character);
    expect(now.pages[0]).toEqual(before.pages[0]);
    expect(now.pages[2]).toEqual(before.pages[2]);
    expect(now.pages[1].background).not.toBe(before.pages[1].background);
    expect(now.pages[1].combined).not.toBe(before.pages[1].combined);
    expect(after.pages[1].backgroundImage).toMatchObject({ seed: 99, pageIndex: 1 });
    expect(after.storyText).toBe(book.storyText);
    expect(after.images).toHaveLength(7);
    for (const url of before.urls[1]) expect(await status(url)).toBe(404);
    for (const url of now.urls[1]) expect(await status(url)).toBe(200);
    const [{ count }] = await server.database.sql<{ count: number }>(
      'SELECT count(*)::int AS count FROM generated_images WHERE pending_session_id IS NOT NULL',
    );
    expect(count).toBe(0);
  });

  it('with redescribe, first writes the scene again from the page text as it is now', async ({ server, ollama }) => {
    const book = await makeBook(server, 2);
    await server.query(UpdatePageTextDocument, { storyId: book.id, pageIndex: 0, text: 'Mara climbed to the lamp room in the snow.' });
    const { events } = await repaint(server, { storyId: book.id, pageIndex: 0, redescribe: true });
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', warnings: [] });
    expect(events.map((event) => event.stageCode)).toContain(STAGE.describingScene.code);
    const describer = ollama.requests.at(-1)!;
    expect(describer.agent).toBe('background');
    expect(describer.messages.at(-1)!.content).toContain('Mara climbed to the lamp room in the snow.');
    const after = await storyOf(server, book.id);
    expect(after.pages[0].sceneDescription).toBe(DEFAULT_REPLIES.background);
    expect(after.backgroundDescription).toBe(DEFAULT_REPLIES.background);
    expect(after.pages[1].sceneDescription).toBe(book.pages[1].sceneDescription);
  });

  it('refuses bad input with BAD_USER_INPUT and stores nothing', async ({ server }) => {
    const book = await makeBook(server, 2);
    const sessions = await sessionCount(server);
    const cases = [
      [{ storyId: randomUUID(), pageIndex: 0 }, /^No story has the id/],
      [{ storyId: 'not-a-uuid', pageIndex: 0 }, /not a valid story id/],
      [{ storyId: book.id, pageIndex: 2 }, /^pageIndex must be a whole number from 0 to 1/],
      [{ storyId: book.id, pageIndex: -1 }, /^pageIndex must be a whole number from 0 to 1/],
      [{ storyId: book.id, pageIndex: 0, seed: -5 }, /^The seed must be a whole number/],
    ] as const;
    for (const [variables, message] of cases) {
      const result = await server.request(RegeneratePageImageDocument, variables);
      expect(result.errors?.[0]).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(await sessionCount(server)).toBe(sessions);
  });

  it('refuses a second repaint of a page while the first runs (CONFLICT), and allows another page', async ({ server, a1111 }) => {
    const book = await makeBook(server, 2);
    a1111.options.latencyMs = 1500;
    try {
      const { regeneratePageImage: first } = await server.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 1 });
      const second = await server.request(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 1 });
      expect(second.errors?.[0]).toMatchObject({ message: expect.stringContaining('is already being painted again'), extensions: { code: 'CONFLICT' } });
      const other = await server.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 });
      for (const id of [first.id, other.regeneratePageImage.id]) {
        const events = await server.subscribe(GenerationProgressDocument, { sessionId: id }).done;
        expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');
      }
    } finally {
      a1111.options.latencyMs = 0;
    }
  });

  it('cancels: the page keeps its pictures and no draft is left', async ({ server, a1111 }) => {
    const book = await makeBook(server, 2);
    a1111.options.latencyMs = 10_000;
    try {
      const { regeneratePageImage: session } = await server.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 });
      const subscription = server.subscribe(GenerationProgressDocument, { sessionId: session.id });
      await subscription.waitFor((event) => event.generationProgress.stageCode === STAGE.repaintingPage.code);
      const { cancelGeneration } = await server.query(CancelGenerationDocument, { id: session.id });
      expect(cancelGeneration.status).toBe('CANCELLED');
      expect((await subscription.done).at(-1)!.generationProgress.status).toBe('CANCELLED');
    } finally {
      a1111.options.latencyMs = 0;
    }
    const after = await storyOf(server, book.id);
    expect(picturesOf(after)).toEqual(picturesOf(book));
    for (const url of picturesOf(after).urls.flat()) expect(await status(url)).toBe(200);
  });
});

describe('regeneratePageImage when the painter fails', () => {
  freshStackTest('leaves the old page as it was and ends FAILED with a warning that names the page', async ({ server, a1111 }) => {
    const book = await makeBook(server, 2);
    a1111.options.failWith = { status: 500, body: '{"error": "OutOfMemoryError", "detail": "CUDA out of memory"}' };
    const { events } = await repaint(server, { storyId: book.id, pageIndex: 1 });
    const last = events.at(-1)!;
    expect(last.status).toBe('FAILED');
    expect(last.errorMessage).toMatch(/^Page 2 could not be painted again; it keeps its old picture/);
    expect(last.warnings).toEqual([expect.stringMatching(/^Page 2's scene could not be painted; the page keeps its text: .*AUTOMATIC1111/)]);
    const after = await storyOf(server, book.id);
    expect(picturesOf(after)).toEqual(picturesOf(book));
    for (const url of picturesOf(after).urls.flat()) expect(await status(url)).toBe(200);
  });
});

describe('regeneratePageImage after a server restart', () => {
  freshStackTest('resumes the repaint from what was saved and replaces the page once', async ({ startServer, a1111 }) => {
    const first = await startServer();
    const book = await makeBook(first, 2);
    a1111.options.latencyMs = 10_000;
    const { regeneratePageImage: session } = await first.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 1, redescribe: true });
    await first
      .subscribe(GenerationProgressDocument, { sessionId: session.id })
      .waitFor((event) => event.generationProgress.stageCode === STAGE.repaintingPage.code);
    await first.stop({ keepData: true, graceMs: 0 });
    a1111.options.latencyMs = 0;

    const second = await startServer({ reuse: first });
    const events = await second.subscribe(GenerationProgressDocument, { sessionId: session.id }).done;
    expect(events.at(-1)!.generationProgress).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, pageIndex: 1 });
    const after = await storyOf(second, book.id);
    expect(after.pages[1].sceneDescription).toBe(DEFAULT_REPLIES.background);
    expect(picturesOf(after).pages[0]).toEqual(picturesOf(book).pages[0]);
    expect(picturesOf(after).pages[1].background).not.toBe(picturesOf(book).pages[1].background);
    expect(after.images).toHaveLength(5);
    const [{ count }] = await second.database.sql<{ count: number }>('SELECT count(*)::int AS count FROM generated_images');
    expect(count).toBe(5);
  });
});

describe('regeneratePageImage with images switched off', () => {
  freshStackTest('answers IMAGES_DISABLED and stores nothing', async ({ startServer }) => {
    const server = await startServer({ env: { IMAGE_BACKEND: 'none', AUTOMATIC1111_URL: undefined } });
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a text-only book', pageCount: 2 } });
    const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const storyId = events.at(-1)!.generationProgress.storyId!;
    const sessions = await sessionCount(server);
    const result = await server.request(RegeneratePageImageDocument, { storyId, pageIndex: 0 });
    expect(result.errors?.[0]).toMatchObject({ message: expect.stringContaining('IMAGE_BACKEND=none'), extensions: { code: 'IMAGES_DISABLED' } });
    expect(await sessionCount(server)).toBe(sessions);
  });
});

describe('updatePageText', () => {
  it('replaces the trimmed text of one page; storyText follows and the pictures stay', async ({ server }) => {
    const book = await makeBook(server, 3);
    const { updatePageText } = await server.query(UpdatePageTextDocument, {
      storyId: book.id,
      pageIndex: 1,
      text: '  The storm said sorry.\n\nMara laughed.  ',
    });
    expect(updatePageText).toMatchObject({ index: 1, text: 'The storm said sorry.\n\nMara laughed.', id: book.pages[1].id });
    const after = await storyOf(server, book.id);
    expect(after.pages.map((page) => page.text)).toEqual([book.pages[0].text, 'The storm said sorry.\n\nMara laughed.', book.pages[2].text]);
    expect(after.storyText).toBe(after.pages.map((page) => page.text).join('\n\n'));
    expect(picturesOf(after)).toEqual(picturesOf(book));
  });

  it('refuses empty, too long or unstorable text and bad pages with BAD_USER_INPUT, changing nothing', async ({ server }) => {
    const book = await makeBook(server, 2);
    const cases = [
      [{ storyId: book.id, pageIndex: 0, text: '   \n ' }, /^The page text is empty/],
      [{ storyId: book.id, pageIndex: 0, text: 'x'.repeat(4001) }, /^The page text is 4001 characters long; the limit is 4000/],
      [{ storyId: book.id, pageIndex: 0, text: 'a\u0000b' }, /control character/],
      [{ storyId: book.id, pageIndex: 2, text: 'fine' }, /^pageIndex must be a whole number from 0 to 1/],
      [{ storyId: randomUUID(), pageIndex: 0, text: 'fine' }, /^No story has the id/],
    ] as const;
    for (const [variables, message] of cases) {
      const result = await server.request(UpdatePageTextDocument, variables);
      expect(result.errors?.[0]).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'BAD_USER_INPUT' } });
    }
    const exactly = await server.query(UpdatePageTextDocument, { storyId: book.id, pageIndex: 0, text: ` ${'y'.repeat(4000)} ` });
    expect(exactly.updatePageText.text).toHaveLength(4000);
    const after = await storyOf(server, book.id);
    expect(after.pages[1].text).toBe(book.pages[1].text);
  });

  it('refuses to edit a book that is still being written (CONFLICT)', async ({ server, ollama }) => {
    ollama.options.tokenDelayMs.story = 30;
    try {
      const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a slow book', pageCount: 2 } });
      const subscription = server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
      const { generationProgress } = await subscription.waitFor((event) => event.generationProgress.storyId !== null);
      for (const result of [
        await server.request(UpdatePageTextDocument, { storyId: generationProgress.storyId!, pageIndex: 0, text: 'mine' }),
        await server.request(RegeneratePageImageDocument, { storyId: generationProgress.storyId!, pageIndex: 0 }),
      ]) {
        expect(result.errors?.[0]).toMatchObject({
          message: expect.stringContaining('is still being written and illustrated'),
          extensions: { code: 'CONFLICT' },
        });
      }
      await server.query(CancelGenerationDocument, { id: startGeneration.id });
      await subscription.done;
    } finally {
      ollama.options.tokenDelayMs.story = 1;
    }
  });
});

describe('editing with API keys', () => {
  freshStackTest(
    "lets an owner edit their book and nobody else's, and counts a repaint against the active-generation limit",
    async ({ startServer, ollama }) => {
      const server = await startServer({ env: { AUTH_MODE: 'api-key', MAX_ACTIVE_GENERATIONS_PER_OWNER: '1' } });
      const keys: Record<string, string> = {};
      for (const owner of ['alice', 'bob']) {
        keys[owner] = `sa_${randomBytes(32).toString('base64url')}`;
        await server.database.sql('INSERT INTO api_keys (id, owner_id, key_hash) VALUES ($1, $2, $3)', [randomUUID(), owner, hashApiKey(keys[owner])]);
      }
      const alice = createTestClient(server.url, { apiKey: keys.alice });
      const bob = createTestClient(server.url, { apiKey: keys.bob });
      try {
        const book = await makeBook(alice, 2);
        const refusals = [
          await bob.request(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 }),
          await bob.request(UpdatePageTextDocument, { storyId: book.id, pageIndex: 0, text: "bob's words" }),
        ];
        for (const result of refusals)
          expect(result.errors?.[0]).toMatchObject({ message: `No story has the id ${book.id}`, extensions: { code: 'BAD_USER_INPUT' } });
        expect((await storyOf(alice, book.id)).pages[0].text).toBe(book.pages[0].text);

        // Alice's one active generation slot taken by a slow book: a repaint is over her limit.
        ollama.options.tokenDelayMs.story = 30;
        const slow = await alice.query(StartGenerationDocument, { input: { prompt: 'a slow one' } });
        const overLimit = await alice.request(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 });
        expect(overLimit.errors?.[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' } });
        await alice.query(CancelGenerationDocument, { id: slow.startGeneration.id });
        ollama.options.tokenDelayMs.story = 1;

        const { events } = await repaint(alice, { storyId: book.id, pageIndex: 0 });
        expect(events.at(-1)!.status).toBe('COMPLETED');
      } finally {
        await Promise.all([alice.close(), bob.close()]);
      }
    },
  );
});
