import path from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { closeDatabase, createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { LocalMediaStore } from '../../src/adapters/media/local-media-store.js';
import { startApp } from '../../src/app.js';
import { GenerationStatus, ImageType } from '../../src/entities/enums.js';
import { DraftSweep } from '../../src/services/generation/draft-sweep.js';
import { saveCompletedBook, savePicture, startRepaint } from '../support/saved-books.js';
import { bothDatabases, fileExists, lockNeverLost, splitLayoutConfig, useSweepDatabase } from '../support/sweep-database.js';

/** A repaint of the page that saved its scene and composite (1000 bytes each) as drafts while it ran, then left in `status`. */
async function repaint(
  repository: TypeOrmStoryRepository,
  media: LocalMediaStore,
  storyId: string,
  pageIndex: number,
  status: GenerationStatus,
): Promise<{ sessionId: string; files: string[] }> {
  const sessionId = await startRepaint(repository, storyId, pageIndex);
  const files = [];
  for (const imageType of [ImageType.BACKGROUND, ImageType.COMBINED]) {
    files.push(await savePicture(repository, media, { storyId, imageType, pageIndex, pendingSessionId: sessionId }));
  }
  if (status !== GenerationStatus.GENERATING_IMAGES) await repository.updateRunningSession(sessionId, { status });
  return { sessionId, files };
}

describe.each(bothDatabases('story-agent-sweep-'))('DraftSweep on %s', (_name, create) => {
  const opened = useSweepDatabase(create, 'story-agent-sweep-media-');
  let media: LocalMediaStore;
  beforeAll(() => {
    media = new LocalMediaStore(opened.tmp, '/media');
  });

  /** A saved two-page book with its page pictures in use. */
  async function savedBook(): Promise<{ storyId: string; inUse: string[] }> {
    const { story } = await saveCompletedBook(opened.repository, 2);
    const inUse = [];
    for (const pageIndex of [0, 1]) inUse.push(await savePicture(opened.repository, media, { storyId: story.id, imageType: ImageType.BACKGROUND, pageIndex }));
    return { storyId: story.id, inUse };
  }

  async function draftFiles(sessionId: string): Promise<string[]> {
    return (await opened.repository.findDraftImages(sessionId)).map((image) => image.filePath).sort();
  }

  const exists = (key: string) => fileExists(path.join(opened.tmp, key));

  it("removes exactly an ended session's draft rows and files; a running session's stay", async () => {
    const { dataSource, repository } = opened;
    const first = await savedBook();
    const second = await savedBook();
    const ended = await repaint(repository, media, first.storyId, 0, GenerationStatus.FAILED);
    const running = await repaint(repository, media, first.storyId, 1, GenerationStatus.GENERATING_IMAGES);
    const pending = await repaint(repository, media, second.storyId, 0, GenerationStatus.PENDING);
    const vanished = await repaint(repository, media, second.storyId, 1, GenerationStatus.CANCELLED);
    // Removed by hand (the server never deletes a session): its drafts have no session at all.
    await dataSource.query('DELETE FROM generation_sessions WHERE id = $1', [vanished.sessionId]);

    const result = await new DraftSweep(repository, media, pino({ level: 'silent' })).sweep();

    expect(result).toEqual({ rows: 4, bytes: 4000 });
    for (const gone of [ended, vanished]) {
      expect(await draftFiles(gone.sessionId)).toEqual([]);
      for (const file of gone.files) expect(await exists(file)).toBe(false);
    }
    for (const kept of [running, pending]) {
      expect(await draftFiles(kept.sessionId)).toEqual([...kept.files].sort());
      for (const file of kept.files) expect(await exists(file)).toBe(true);
    }
    for (const { storyId, inUse } of [first, second]) {
      expect((await repository.findImagesByStoryIds([storyId])).map((image) => image.filePath).sort()).toEqual([...inUse].sort());
      for (const file of inUse) expect(await exists(file)).toBe(true);
    }

    // Swept again: nothing left to remove, and the running session's drafts are still there.
    expect(await new DraftSweep(repository, media, pino({ level: 'silent' })).sweep()).toEqual({ rows: 0, bytes: 0 });
    expect(await draftFiles(running.sessionId)).toEqual([...running.files].sort());
  });

  it("never deletes a running session's draft, even when asked to by id", async () => {
    const { repository } = opened;
    const { storyId } = await savedBook();
    const running = await repaint(repository, media, storyId, 0, GenerationStatus.GENERATING_IMAGES);
    const ids = (await repository.findDraftImages(running.sessionId)).map((image) => image.id);

    expect(await repository.deleteEndedDrafts(ids)).toEqual([]);
    expect(await draftFiles(running.sessionId)).toEqual([...running.files].sort());

    await repository.updateRunningSession(running.sessionId, { status: GenerationStatus.COMPLETED });
    expect((await repository.deleteEndedDrafts(ids)).sort()).toEqual([...ids].sort());
  });
});

describe('the sweep in the split layout', () => {
  it("runs in a worker at start-up, not in an API process, and leaves a running session's drafts", async ({ onTestFinished }) => {
    const { config } = await splitLayoutConfig(onTestFinished, 'story-agent-sweep-app-');

    // What a killed process left: a failed repaint's drafts, beside a repaint another worker is still painting.
    const dataSource = await openDatabase(createDataSource(config.database), config.database, { onLockLost: lockNeverLost });
    const repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: false });
    const media = new LocalMediaStore(config.mediaDir, '/media');
    const { story } = await saveCompletedBook(repository, 2);
    const failed = (await repaint(repository, media, story.id, 0, GenerationStatus.FAILED)).sessionId;
    const running = (await repaint(repository, media, story.id, 1, GenerationStatus.GENERATING_IMAGES)).sessionId;
    const filesOf = async (sessionId: string) => (await repository.findDraftImages(sessionId)).map((image) => image.filePath);
    const failedFiles = await filesOf(failed);
    const runningFiles = await filesOf(running);
    const onDisk = (key: string) => fileExists(path.join(config.mediaDir, key));

    try {
      const api = await startApp(config, { role: 'api', logger: pino({ level: 'silent' }) });
      await api.stop(0);
      expect(await filesOf(failed)).toHaveLength(2);

      const lines: { msg: string; rows?: number; bytes?: number }[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
      const worker = await startApp(config, { role: 'worker', logger });
      // Stopping ends a sweep under way: let the start-up sweep's drafts step finish first.
      await vi.waitFor(() => expect(lines.some((line) => line.msg.startsWith('swept'))).toBe(true), { timeout: 15_000 });
      await worker.stop(0);

      expect(await filesOf(failed)).toEqual([]);
      for (const file of failedFiles) expect(await onDisk(file)).toBe(false);
      expect((await filesOf(running)).sort()).toEqual([...runningFiles].sort());
      for (const file of runningFiles) expect(await onDisk(file)).toBe(true);
      expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([expect.objectContaining({ rows: 2, bytes: 2000 })]);
    } finally {
      await closeDatabase(dataSource);
    }
  });
});
