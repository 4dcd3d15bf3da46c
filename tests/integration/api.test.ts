import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger as TypeOrmLogger } from 'typeorm';
import { describe, expect } from 'vitest';
import {
  CancelGenerationDocument,
  DeleteStoryDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  StoriesDocument,
  StoryDocument,
} from '../../src/client/generated/graphql.js';
import { test as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

/** Counts the SQL statements TypeORM sends while `counting` is on. */
class QueryCounter implements TypeOrmLogger {
  counting = false;
  queries: string[] = [];
  logQuery(query: string) {
    if (this.counting) this.queries.push(query);
  }
  logQueryError() {}
  logQuerySlow() {}
  logSchemaBuild() {}
  logMigration() {}
  log() {}
}

const counter = new QueryCounter();

it.override('stack', {
  ollama: { tokenDelayMs: { planner: 0, story: 0, character: 0, background: 0 } },
  env: { GENERATION_CONCURRENCY: '4' },
  databaseLogger: counter,
});

async function generate(server: TestServer, prompt: string): Promise<string> {
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt } });
  const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  return events.at(-1)!.generationProgress.storyId!;
}

async function countRows(server: TestServer): Promise<{ sessions: number; stories: number }> {
  const [counts] = await server.database.sql<{ sessions: number; stories: number }>(
    'SELECT (SELECT count(*)::int FROM generation_sessions) AS sessions, (SELECT count(*)::int FROM stories) AS stories',
  );
  return counts;
}

describe('bad input', () => {
  it.for([
    ['an empty prompt', '', 'The prompt is empty'],
    ['a prompt of only spaces', '   \n ', 'The prompt is empty'],
    ['a prompt over 2000 characters', 'x'.repeat(2001), 'The prompt is 2001 characters long; the limit is 2000.'],
  ])('rejects %s with BAD_USER_INPUT and stores nothing', async ([_name, prompt, message], { server }) => {
    const before = await countRows(server);
    const result = await server.request(StartGenerationDocument, { input: { prompt } });
    expect(result.data).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    expect(result.errors![0].message).toContain(message);
    expect(await countRows(server)).toEqual(before);
  });

  it('accepts a 2000-character prompt once trimmed', async ({ server }) => {
    const result = await server.request(StartGenerationDocument, { input: { prompt: `  ${'y'.repeat(2000)}  ` } });
    expect(result.errors).toBeUndefined();
    expect(result.data!.startGeneration.prompt).toHaveLength(2000);
    await server.query(CancelGenerationDocument, { id: result.data!.startGeneration.id });
  });

  it('rejects a negative seed', async ({ server }) => {
    const result = await server.request(StartGenerationDocument, { input: { prompt: 'a cat', seed: -5 } });
    expect(result.errors![0]).toMatchObject({ message: 'The seed must be a whole number from 0 to 2147483647.', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it.for([
    ['generationSession', GenerationSessionDocument],
    ['story', StoryDocument],
    ['cancelGeneration', CancelGenerationDocument],
    ['deleteStory', DeleteStoryDocument],
  ] as const)('rejects a malformed id in %s with BAD_USER_INPUT', async ([_field, document], { server }) => {
    const result = await server.request<unknown, { id: string }>(document, { id: 'not-a-uuid' });
    expect(result.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    expect(result.errors![0].message).toBe(`"not-a-uuid" is not a valid ${_field.includes('tory') ? 'story id' : 'session id'}: expected a UUID.`);
  });

  it('answers null for unknown ids in queries and BAD_USER_INPUT in mutations', async ({ server }) => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await server.query(StoryDocument, { id: unknown })).story).toBeNull();
    expect((await server.query(GenerationSessionDocument, { id: unknown })).generationSession).toBeNull();
    for (const document of [CancelGenerationDocument, DeleteStoryDocument] as const) {
      const result = await server.request<unknown, { id: string }>(document, { id: unknown });
      expect(result.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
      expect(result.errors![0].message).toContain(unknown);
    }
  });

  it('rejects a subscription to an unknown session with BAD_USER_INPUT', async ({ server }) => {
    const subscription = server.subscribe(GenerationProgressDocument, { sessionId: '00000000-0000-4000-8000-000000000000' });
    await expect(subscription.done).rejects.toThrow(/BAD_USER_INPUT/);
  });

  it('refuses an operation of a thousand aliased stories fields before running any of it', async ({ server }) => {
    const aliases = Array.from({ length: 1000 }, (_, index) => `s${index}: stories(limit: 100) { id }`).join(' ');
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ ${aliases} }` }),
    });
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0].message).toBe(
      'This operation costs 101000 units (fields times list sizes); the limit is 50000. Ask for fewer fields, smaller pages or fewer aliases.',
    );
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('rejects a page size above 100', async ({ server }) => {
    const result = await server.request(StoriesDocument, { limit: 101 });
    expect(result.errors![0]).toMatchObject({ message: 'limit must be between 1 and 100.', extensions: { code: 'BAD_USER_INPUT' } });
  });
});

describe('stories', () => {
  it('lists 20 stories with all their pages and images in a fixed number of SQL queries, newest first', async ({ server }) => {
    const ids: string[] = [];
    for (let index = 0; index < 20; index++) ids.push(await generate(server, `story number ${index}`));

    counter.queries = [];
    counter.counting = true;
    const { stories } = await server.query(StoriesDocument, { limit: 20 });
    counter.counting = false;

    expect(stories).toHaveLength(20);
    expect(stories.map((story) => story.id)).toEqual([...ids].reverse());
    expect(stories.every((story) => story.images.length === 3 && story.combinedImage !== null && story.pages[0].combinedImage !== null)).toBe(true);
    // One for the list, one for every page of every story on it, one for every image of them. The last
    // generation's own bookkeeping on its session row may land while the list is read: it is not the list's.
    const listing = counter.queries.filter((query) => !/\bgeneration_sessions\b/.test(query));
    expect(listing).toHaveLength(3);
    expect(listing.every((query) => /\b(stories|story_pages|generated_images)\b/.test(query))).toBe(true);
  });

  it('pages with limit and offset', async ({ server }) => {
    // Stories of its own, so the page is never empty whichever tests ran before.
    for (let index = 0; index < 5; index++) await generate(server, `paged story ${index}`);
    const all = (await server.query(StoriesDocument, { limit: 100 })).stories.map((story) => story.id);
    const page = (await server.query(StoriesDocument, { limit: 3, offset: 2 })).stories.map((story) => story.id);
    expect(page).toHaveLength(3);
    expect(page).toEqual(all.slice(2, 5));
  });

  it('deletes a story with its images and files; the session stays, without its story', async ({ server }) => {
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a story to delete' } });
    const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const storyId = events.at(-1)!.generationProgress.storyId!;
    const { story } = await server.query(StoryDocument, { id: storyId });
    const urls = story!.images.map((image) => image.url);
    expect(urls).toHaveLength(3);

    expect((await server.query(DeleteStoryDocument, { id: storyId })).deleteStory).toBe(true);
    expect((await server.query(StoryDocument, { id: storyId })).story).toBeNull();
    for (const url of urls) expect((await fetch(url)).status).toBe(404);
    const { generationSession } = await server.query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession).toMatchObject({ status: 'COMPLETED', story: null });
  });
});

describe('http', () => {
  it('serves only finished images from the media folder: no partial file, nothing else put there', async ({ server }) => {
    const images = path.join(server.dataDir, 'media', 'images');
    await fs.mkdir(images, { recursive: true });
    const partial = `${randomUUID()}.png.partial`;
    await fs.writeFile(path.join(images, partial), 'half a picture');
    await fs.writeFile(path.join(server.dataDir, 'media', 'notes.txt'), 'secret');
    for (const url of [`/media/images/${partial}`, '/media/notes.txt']) {
      expect((await fetch(`${server.url}${url}`)).status).toBe(404);
    }
  });

  it('answers /healthz with 200 once the server accepts requests', async ({ server }) => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it.for(['/media/../package.json', '/media/%2e%2e/package.json', '/media/images/..%2F..%2Fpackage.json', '/media/.hidden', '/media/'])(
    'serves nothing outside the media folder (%s)',
    async (path, { server }) => {
      const response = await fetch(`${server.url}${path}`);
      expect([400, 403, 404]).toContain(response.status);
      expect(await response.text()).not.toContain('"name": "story-agent"');
    },
  );
});
