import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { InProcessProgressBus } from '../../src/adapters/progress/in-process-progress-bus.js';
import { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, ImageType } from '../../src/entities/index.js';
import type { JobQueue } from '../../src/ports/job-queue.js';
import type { MediaStore, StoredFile } from '../../src/ports/media-store.js';
import { SINGLE_USER } from '../../src/services/auth/viewer.js';
import { ConflictError, ImagesDisabledError, InvalidInputError, LimitReachedError } from '../../src/services/errors.js';
import { GenerationService } from '../../src/services/generation/generation-service.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import { StoryService } from '../../src/services/stories/story-service.js';
import { InMemoryGenerationMetrics } from '../support/in-memory-generation-metrics.js';
import { InMemoryRepositories } from '../support/in-memory-repositories.js';
import { pictureRow } from '../support/saved-books.js';

/** GenerationService.repaintPage and StoryService.updatePageText against in-memory ports: what they accept, refuse and store. */

class RecordingQueue implements JobQueue {
  readonly queued: string[] = [];
  async enqueue(sessionId: string): Promise<void> {
    this.queued.push(sessionId);
  }
  readonly cancelled: string[] = [];
  process(): void {}
  async cancel(sessionId: string): Promise<void> {
    this.cancelled.push(sessionId);
  }
  activeSessions(): ReadonlySet<string> {
    return new Set();
  }
  async close(): Promise<void> {}
}

/** Media files as keys only: what was removed is recorded. */
class RecordingMedia implements MediaStore {
  readonly removed: string[] = [];
  async save(): Promise<string> {
    return 'unused';
  }
  async read(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
  async remove(key: string): Promise<number> {
    this.removed.push(key);
    return 0;
  }
  async *list(): AsyncIterable<StoredFile> {
    yield* [];
  }
  urlFor(key: string): string {
    return `/media/${key}`;
  }
}

/** A finished two-page book, saved as the pipeline saves one. */
async function setup({ imagesEnabled = true, maxActive = 5 } = {}) {
  const repositories = new InMemoryRepositories();
  const queue = new RecordingQueue();
  const logger = pino({ level: 'silent' });
  const media = new RecordingMedia();
  const generations = new GenerationService(
    repositories,
    media,
    queue,
    new InProcessProgressBus(),
    logger,
    new InMemoryGenerationMetrics(),
    maxActive,
    async () => imagesEnabled,
  );
  const stories = new StoryService(repositories, media, logger);
  const bookSession = randomUUID();
  await repositories.createSession({
    id: bookSession,
    prompt: 'a fox',
    options: { kind: GenerationKind.BOOK, style: 'ink', seed: null, pageCount: 2 },
    stage: STAGE.queued,
    ownerId: null,
  });
  const page = { outline: 'o', sceneDescription: 'a hill', characterSide: CharacterSide.LEFT, characterDistance: CharacterDistance.NEAR };
  const story = await repositories.saveBookOnce(
    { id: randomUUID(), title: 'T', prompt: 'a fox', style: 'ink', characterDescription: 'a fox', pages: [page, page] },
    bookSession,
  );
  await repositories.savePageTextOnce(story.id, 0, 'First page.');
  await repositories.savePageTextOnce(story.id, 1, 'Second page.');
  await repositories.updateRunningSession(bookSession, { status: GenerationStatus.COMPLETED });
  return { repositories, queue, media, generations, stories, storyId: story.id, bookSession };
}

describe('GenerationService.repaintPage', () => {
  it('queues a PAGE_REPAINT session of the story with the page, seed, redescribe and the book style', async () => {
    const { generations, queue, storyId } = await setup();
    const session = await generations.repaintPage({ storyId, pageIndex: 1, seed: 12, redescribe: true }, SINGLE_USER);
    expect(session).toMatchObject({
      status: GenerationStatus.PENDING,
      storyId,
      options: { kind: GenerationKind.PAGE_REPAINT, pageIndex: 1, seed: 12, redescribe: true, style: 'ink' },
    });
    expect(queue.queued).toEqual([session.id]);
  });

  it.each([
    ['an unknown story', { pageIndex: 0, storyId: randomUUID() }, InvalidInputError, /^No story has the id/],
    ['a page past the end', { pageIndex: 2 }, InvalidInputError, /^pageIndex must be a whole number from 0 to 1/],
    ['a fractional page', { pageIndex: 0.5 }, InvalidInputError, /^pageIndex must be/],
    ['a seed out of range', { pageIndex: 0, seed: 2 ** 31 }, InvalidInputError, /^The seed must be/],
  ] as const)('refuses %s and queues nothing', async (_name, input, kind, message) => {
    const { generations, queue, storyId, repositories } = await setup();
    const sessions = repositories.sessions.size;
    await expect(generations.repaintPage({ storyId, ...input }, SINGLE_USER)).rejects.toSatisfy(
      (error) => error instanceof kind && message.test((error as Error).message),
    );
    expect(queue.queued).toEqual([]);
    expect(repositories.sessions.size).toBe(sessions);
  });

  it('refuses with ImagesDisabledError when images are switched off', async () => {
    const { generations, storyId, queue } = await setup({ imagesEnabled: false });
    await expect(generations.repaintPage({ storyId, pageIndex: 0 }, SINGLE_USER)).rejects.toBeInstanceOf(ImagesDisabledError);
    expect(queue.queued).toEqual([]);
  });

  it('refuses a second repaint of the same page while the first runs, but not of another page', async () => {
    const { generations, storyId } = await setup();
    const first = await generations.repaintPage({ storyId, pageIndex: 0 }, SINGLE_USER);
    await expect(generations.repaintPage({ storyId, pageIndex: 0 }, SINGLE_USER)).rejects.toThrow(
      new ConflictError(`Page 0 of story ${storyId} is already being painted again (session ${first.id}); wait for it or cancel it.`),
    );
    await expect(generations.repaintPage({ storyId, pageIndex: 1 }, SINGLE_USER)).resolves.toMatchObject({ status: GenerationStatus.PENDING });
  });

  it('refuses while the book itself is still being made (ConflictError)', async () => {
    const { generations, repositories, storyId, bookSession, queue } = await setup();
    repositories.sessions.get(bookSession)!.status = GenerationStatus.GENERATING_IMAGES;
    await expect(generations.repaintPage({ storyId, pageIndex: 0 }, SINGLE_USER)).rejects.toThrow(/is still being written and illustrated/);
    expect(queue.queued).toEqual([]);
  });

  it('counts against the active-generation limit (LimitReachedError)', async () => {
    const { generations, repositories, storyId, queue } = await setup({ maxActive: 1 });
    await repositories.createSession({
      id: randomUUID(),
      prompt: 'x',
      options: { kind: GenerationKind.BOOK, style: null, seed: null },
      stage: STAGE.queued,
      ownerId: null,
    });
    await expect(generations.repaintPage({ storyId, pageIndex: 0 }, SINGLE_USER)).rejects.toBeInstanceOf(LimitReachedError);
    expect(queue.queued).toEqual([]);
  });
});

describe('GenerationService.cancel of a page repaint that no worker runs', () => {
  it("discards the drafts an earlier run saved (rows and files) and leaves the page's pictures alone", async () => {
    const { generations, repositories, media, storyId } = await setup();
    const inUse = await repositories.saveImageOnce(picture(storyId, 'images/in-use.png', null));
    const session = await generations.repaintPage({ storyId, pageIndex: 1 }, SINGLE_USER);
    // A run before a restart saved the new scene as a draft; the session was queued again and waits.
    await repositories.updateRunningSession(session.id, { status: GenerationStatus.GENERATING_IMAGES });
    await repositories.saveImageOnce(picture(storyId, 'images/draft.png', session.id));
    const cancelled = await generations.cancel(session.id, SINGLE_USER);
    expect(cancelled.status).toBe(GenerationStatus.CANCELLED);
    expect(await repositories.findDraftImages(session.id)).toEqual([]);
    expect(media.removed).toEqual(['images/draft.png']);
    expect(await repositories.findImagesByStoryIds([storyId])).toEqual([inUse]);
  });

  it('leaves a repaint whose new pictures already replace the old ones to finish: it is past cancelling', async () => {
    const { generations, repositories, queue, storyId } = await setup();
    const session = await generations.repaintPage({ storyId, pageIndex: 1 }, SINGLE_USER);
    await repositories.updateRunningSession(session.id, { status: GenerationStatus.GENERATING_IMAGES });
    await repositories.saveImageOnce(picture(storyId, 'images/new.png', session.id));
    // Its run died after the swap, before it was marked completed; it waits to be resumed.
    await repositories.replacePagePictures(storyId, 1, session.id, null);
    const answer = await generations.cancel(session.id, SINGLE_USER);
    expect(answer.status).toBe(GenerationStatus.GENERATING_IMAGES);
    expect(queue.cancelled).toEqual([]);
    expect((await repositories.findImagesByStoryIds([storyId])).map((image) => image.filePath)).toEqual(['images/new.png']);
  });

  it('saves no draft for a session that has ended, so a run that missed the cancel leaves none behind', async () => {
    const { generations, repositories, storyId } = await setup();
    const session = await generations.repaintPage({ storyId, pageIndex: 1 }, SINGLE_USER);
    await generations.cancel(session.id, SINGLE_USER);
    expect(await repositories.saveImageOnce(picture(storyId, 'images/late.png', session.id))).toBeNull();
    expect(await repositories.findDraftImages(session.id)).toEqual([]);
  });
});

/** Page 1's scene: in use (pendingSessionId null) or a draft of the session given. */
function picture(storyId: string, filePath: string, pendingSessionId: string | null) {
  return pictureRow({ storyId, imageType: ImageType.BACKGROUND, pageIndex: 1, filePath, pendingSessionId });
}

describe('StoryService.updatePageText', () => {
  it('stores the trimmed text and joins storyText again', async () => {
    const { stories, repositories, storyId } = await setup();
    const page = await stories.updatePageText(storyId, 1, '\n  New second page.  \n', SINGLE_USER);
    expect(page).toMatchObject({ index: 1, text: 'New second page.' });
    expect((await repositories.requireStory(storyId)).storyText).toBe('First page.\n\nNew second page.');
  });

  it.each([
    ['empty after trimming', 0, ' \t\n', /^The page text is empty/],
    ['only invisible characters', 0, '\u200b\u200b', /^The page text is empty/],
    ['over 4000 characters', 0, 'x'.repeat(4001), /^The page text is 4001 characters long/],
    ['a page past the end', 2, 'fine', /^pageIndex must be a whole number from 0 to 1/],
  ] as const)('refuses text %s and changes nothing', async (_name, pageIndex, text, message) => {
    const { stories, repositories, storyId } = await setup();
    await expect(stories.updatePageText(storyId, pageIndex, text, SINGLE_USER)).rejects.toSatisfy(
      (error) => error instanceof InvalidInputError && message.test((error as Error).message),
    );
    expect(repositories.calls.filter((call) => call.startsWith('replacePageText'))).toEqual([]);
    expect((await repositories.requireStory(storyId)).storyText).toBe('First page.\n\nSecond page.');
  });

  it("refuses another owner's story as if it did not exist", async () => {
    const { stories, storyId } = await setup();
    await expect(stories.updatePageText(storyId, 0, 'mine now', { ownerId: 'mallory' })).rejects.toThrow(
      new InvalidInputError(`No story has the id ${storyId}`),
    );
  });
});
