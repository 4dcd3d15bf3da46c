import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, ImageType } from '../../src/entities/enums.js';
import { PictureSwap } from '../../src/ports/book-repository.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import { createRepaintSession, pictureRow } from '../support/saved-books.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let database: TestDatabase;
let dataSource: DataSource;
let repository: TypeOrmStoryRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  const config = { kind: 'postgres' as const, url: database.url, poolSize: 5 };
  dataSource = await openDatabase(createDataSource(config), config, {
    onLockLost: () => {
      throw new Error('PostgreSQL has no directory lock to lose');
    },
  });
  repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: false });
});

afterAll(async () => {
  await dataSource.destroy();
  await database.drop();
});

function book(id: string, pageCount: number) {
  return {
    id,
    title: `T ${id}`,
    prompt: 'a race',
    style: null,
    characterDescription: 'a red fox',
    pages: Array.from({ length: pageCount }, (_, index) => ({
      outline: `page ${index}`,
      sceneDescription: `a meadow ${index}`,
      characterSide: CharacterSide.LEFT,
      characterDistance: CharacterDistance.FAR,
    })),
  };
}

async function newSession(): Promise<string> {
  const id = randomUUID();
  await repository.createSession({ id, prompt: 'a race', options: { kind: GenerationKind.BOOK, style: null, seed: null }, stage: STAGE.queued, ownerId: null });
  return id;
}

describe('StoryRepository under two runs of one session', () => {
  it('keeps exactly one story when both save at once, and both get that one back', async () => {
    const sessionId = await newSession();
    const drafts = [randomUUID(), randomUUID()].map((id) => book(id, 3));
    const saved = await Promise.all(drafts.map((draft) => repository.saveBookOnce(draft, sessionId)));
    expect(saved[0].id).toBe(saved[1].id);
    const rows = await database.sql<{ id: string }>('SELECT id FROM stories WHERE id = ANY($1)', [drafts.map((draft) => draft.id)]);
    expect(rows).toEqual([{ id: saved[0].id }]);
    expect(await repository.findPages(saved[0].id)).toHaveLength(3);
    expect((await repository.requireSession(sessionId)).storyId).toBe(saved[0].id);
  });

  it('keeps exactly one image of a type when both save it, and both get that one back', async () => {
    const sessionId = await newSession();
    const story = await repository.saveBookOnce(book(randomUUID(), 2), sessionId);
    const image = (filePath: string, imageType = ImageType.CHARACTER, pageIndex: number | null = null) =>
      pictureRow({ storyId: story.id, imageType, pageIndex, filePath });
    const [first, second] = await Promise.all([repository.saveImageOnce(image('images/a.png')), repository.saveImageOnce(image('images/b.png'))]);
    expect(first!.id).toBe(second!.id);
    expect(await repository.findImagesByStoryIds([story.id])).toHaveLength(1);
    // One scene per page: page 1's is a picture of its own, and racing saves of it keep one.
    const scenes = await Promise.all([
      repository.saveImageOnce(image('images/c.png', ImageType.BACKGROUND, 0)),
      repository.saveImageOnce(image('images/d.png', ImageType.BACKGROUND, 1)),
      repository.saveImageOnce(image('images/e.png', ImageType.BACKGROUND, 1)),
    ]);
    expect(scenes[1]!.id).toBe(scenes[2]!.id);
    expect(scenes[0]!.id).not.toBe(scenes[1]!.id);
    expect(await repository.findImagesByStoryIds([story.id])).toHaveLength(3);
  });

  it('keeps the first text of a page when two runs write it, and joins written pages into storyText', async () => {
    const sessionId = await newSession();
    const story = await repository.saveBookOnce(book(randomUUID(), 3), sessionId);
    const [first, second] = await Promise.all([
      repository.savePageTextOnce(story.id, 1, 'Page two, first run.'),
      repository.savePageTextOnce(story.id, 1, 'Page two, second run.'),
    ]);
    expect(first.text).toBe(second.text);
    await repository.savePageTextOnce(story.id, 0, 'Page one.');
    expect((await repository.requireStory(story.id)).storyText).toBe(`Page one.\n\n${first.text}`);
    expect((await repository.findPages(story.id)).map((page) => page.text)).toEqual(['Page one.', first.text, '']);
  });

  it('finds running sessions nobody has touched for a while, and not the ones touched since', async () => {
    const [silent, alive] = [await newSession(), await newSession()];
    await database.sql(`UPDATE generation_sessions SET updated_at = now() - interval '1 minute' WHERE id = ANY($1)`, [[silent, alive]]);
    await repository.touchSession(alive);
    const abandoned = (await repository.findAbandonedSessions(30_000)).map((session) => session.id);
    expect(abandoned).toContain(silent);
    expect(abandoned).not.toContain(alive);
  });
});

describe('StoryRepository and the drafts of a page repaint', () => {
  /** A one-page book with a scene in use, and a running repaint session of its page. */
  async function bookWithRepaint() {
    const story = await repository.saveBookOnce(book(randomUUID(), 1), await newSession());
    await repository.saveImageOnce(scene(story.id, 'images/old.png', null));
    const sessionId = await createRepaintSession(repository, story.id, 0);
    return { storyId: story.id, sessionId };
  }

  function scene(storyId: string, filePath: string, pendingSessionId: string | null, imageType = ImageType.BACKGROUND) {
    return pictureRow({ storyId, imageType, pageIndex: 0, filePath, pendingSessionId });
  }

  it('saves a draft only while its session runs, so a cancelled session keeps none', async () => {
    const { storyId, sessionId } = await bookWithRepaint();
    expect(await repository.saveImageOnce(scene(storyId, 'images/draft.png', sessionId))).toMatchObject({
      filePath: 'images/draft.png',
      pendingSessionId: sessionId,
    });
    await repository.updateRunningSession(sessionId, { status: GenerationStatus.CANCELLED });
    expect(await repository.discardDraftImages(sessionId)).toEqual(['images/draft.png']);
    expect(await repository.saveImageOnce(scene(storyId, 'images/late.png', sessionId, ImageType.COMBINED))).toBeNull();
    expect(await repository.saveImageOnce(scene(storyId, 'images/again.png', sessionId))).toBeNull();
    expect(await repository.findDraftImages(sessionId)).toEqual([]);
  });

  it('swaps once: a second swap of the session gives back the keys recorded and changes nothing', async () => {
    const { storyId, sessionId } = await bookWithRepaint();
    await repository.saveImageOnce(scene(storyId, 'images/new.png', sessionId));
    expect(await repository.replacePagePictures(storyId, 0, sessionId, 'a new meadow')).toEqual({
      outcome: PictureSwap.REPLACED,
      mediaKeys: ['images/old.png'],
    });
    const swapped = await repository.findImagesByStoryIds([storyId]);
    expect(swapped.map((image) => image.filePath)).toEqual(['images/new.png']);
    expect((await repository.requireSession(sessionId)).options).toMatchObject({ replacedMediaKeys: ['images/old.png'] });
    expect(await repository.replacePagePictures(storyId, 0, sessionId, 'a new meadow')).toEqual({
      outcome: PictureSwap.REPLACED,
      mediaKeys: ['images/old.png'],
    });
    expect(await repository.findImagesByStoryIds([storyId])).toEqual(swapped);
    // Past cancelling: the page already shows the new pictures.
    expect(await repository.cancelRunningSession(sessionId, { status: GenerationStatus.CANCELLED })).toBe(false);
    expect((await repository.requireSession(sessionId)).status).toBe(GenerationStatus.PENDING);
  });

  it('swaps nothing for a session that has ended', async () => {
    const { storyId, sessionId } = await bookWithRepaint();
    await repository.saveImageOnce(scene(storyId, 'images/new.png', sessionId));
    await repository.updateRunningSession(sessionId, { status: GenerationStatus.CANCELLED });
    expect(await repository.replacePagePictures(storyId, 0, sessionId, 'a new meadow')).toEqual({ outcome: PictureSwap.SESSION_ENDED });
    expect((await repository.findImagesByStoryIds([storyId])).map((image) => image.filePath)).toEqual(['images/old.png']);
    expect((await repository.findPages(storyId))[0].sceneDescription).toBe('a meadow 0');
  });
});
