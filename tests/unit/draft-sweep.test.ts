import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GenerationStatus, ImageType } from '../../src/entities/index.js';
import { DraftSweep } from '../../src/services/generation/draft-sweep.js';
import { InMemoryMediaStore } from '../support/in-memory-media-store.js';
import { InMemoryRepositories } from '../support/in-memory-repositories.js';
import { saveCompletedBook, savePicture, startRepaint } from '../support/saved-books.js';

interface LogLine {
  level: number;
  msg: string;
  rows?: number;
  bytes?: number;
}

/** A saved book of `pageCount` pages whose page pictures are in use, and a way to add page repaints with drafts. */
async function setup(pageCount = 8) {
  const repositories = new InMemoryRepositories();
  const media = new InMemoryMediaStore();
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const { story } = await saveCompletedBook(repositories, pageCount);
  const picture = (imageType: ImageType, pageIndex: number, pendingSessionId: string | null, bytes: number) =>
    savePicture(repositories, media, { storyId: story.id, imageType, pageIndex, pendingSessionId }, bytes);
  for (let index = 0; index < pageCount; index += 1) {
    await picture(ImageType.BACKGROUND, index, null, 10);
    await picture(ImageType.COMBINED, index, null, 10);
  }

  /** A page repaint of `pageIndex` with its two drafts saved while it ran, then left in `status`; returns the session and the drafts' files. */
  const repaint = async (pageIndex: number, status: GenerationStatus, bytes = 100) => {
    const sessionId = await startRepaint(repositories, story.id, pageIndex);
    const files = [await picture(ImageType.BACKGROUND, pageIndex, sessionId, bytes), await picture(ImageType.COMBINED, pageIndex, sessionId, bytes)];
    if (status !== GenerationStatus.GENERATING_IMAGES) await repositories.updateRunningSession(sessionId, { status });
    return { sessionId, files };
  };

  const draftsOf = (sessionId: string) => repositories.images.filter((image) => image.pendingSessionId === sessionId);
  return { repositories, media, logger, lines, storyId: story.id, repaint, draftsOf };
}

describe('DraftSweep', () => {
  it('removes the drafts (files, then rows) of ended or vanished sessions only, and counts their rows and bytes', async () => {
    const { repositories, media, logger, lines, repaint, draftsOf } = await setup();
    const failed = await repaint(0, GenerationStatus.FAILED, 100);
    const cancelled = await repaint(1, GenerationStatus.CANCELLED, 200);
    const completed = await repaint(2, GenerationStatus.COMPLETED, 300);
    const vanished = await repaint(3, GenerationStatus.FAILED, 400);
    repositories.sessions.delete(vanished.sessionId);
    const running = await repaint(4, GenerationStatus.GENERATING_IMAGES, 500);
    // Queued again after a restart: back to PENDING with the drafts of its earlier run.
    const resumed = await repaint(5, GenerationStatus.PENDING, 600);
    const inUse = repositories.images.filter((image) => image.pendingSessionId === null).map((image) => image.filePath);

    const result = await new DraftSweep(repositories, media, logger).sweep();

    expect(result).toEqual({ rows: 8, bytes: 2 * (100 + 200 + 300 + 400) });
    for (const ended of [failed, cancelled, completed, vanished]) {
      expect(draftsOf(ended.sessionId)).toEqual([]);
      for (const file of ended.files) expect(media.files.has(file)).toBe(false);
    }
    for (const live of [running, resumed]) {
      expect(
        draftsOf(live.sessionId)
          .map((image) => image.filePath)
          .sort(),
      ).toEqual([...live.files].sort());
      for (const file of live.files) expect(media.files.has(file)).toBe(true);
    }
    expect(repositories.images.filter((image) => image.pendingSessionId === null).map((image) => image.filePath)).toEqual(inUse);
    for (const file of inUse) expect(media.files.has(file)).toBe(true);
    expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([
      expect.objectContaining({ level: 30, rows: 8, bytes: 2000, msg: 'swept 8 draft pictures of ended page repaints (2000 bytes)' }),
    ]);
  });

  it('goes through a backlog larger than one batch', async () => {
    const { repositories, media, logger, repaint } = await setup();
    const ended = [];
    for (let index = 0; index < 5; index += 1) ended.push(await repaint(index, GenerationStatus.FAILED, 50));
    const running = await repaint(5, GenerationStatus.GENERATING_IMAGES);

    expect(await new DraftSweep(repositories, media, logger, 3).sweep()).toEqual({ rows: 10, bytes: 500 });
    expect(repositories.images.filter((image) => image.pendingSessionId !== null).map((image) => image.pendingSessionId)).toEqual([
      running.sessionId,
      running.sessionId,
    ]);
    for (const { files } of ended) for (const file of files) expect(media.files.has(file)).toBe(false);
  });

  it('stops between two batches once its signal is aborted (the worker is stopping): each batch goes whole, files and records', async () => {
    const { repositories, media, logger, repaint, draftsOf } = await setup();
    const ended = [];
    for (let index = 0; index < 3; index += 1) ended.push(await repaint(index, GenerationStatus.FAILED, 50));
    const stopping = new AbortController();
    const deleteEndedDrafts = repositories.deleteEndedDrafts.bind(repositories);
    repositories.deleteEndedDrafts = async (ids) => {
      const deleted = await deleteEndedDrafts(ids);
      stopping.abort(new Error('The worker is stopping'));
      return deleted;
    };

    await expect(new DraftSweep(repositories, media, logger, 2).sweep(stopping.signal)).rejects.toThrow('The worker is stopping');
    // One batch of two drafts went, files and records together; the other four are left for the next start.
    const left = ended.flatMap(({ sessionId }) => draftsOf(sessionId)).map((draft) => draft.filePath);
    const files = ended.flatMap((session) => session.files);
    expect(left).toHaveLength(4);
    for (const file of files) expect(media.files.has(file)).toBe(left.includes(file));
  });

  it('keeps the record of a file it cannot remove, and sweeps it once the file can go', async () => {
    const { repositories, media, logger, lines, repaint, draftsOf } = await setup();
    const ended = await repaint(0, GenerationStatus.CANCELLED, 100);
    media.failing.add(ended.files[0]);

    expect(await new DraftSweep(repositories, media, logger).sweep()).toEqual({ rows: 1, bytes: 100 });
    expect(draftsOf(ended.sessionId).map((image) => image.filePath)).toEqual([ended.files[0]]);
    expect(lines.some((line) => line.level === 40 && line.msg.startsWith('could not remove the file of a draft picture'))).toBe(true);

    media.failing.clear();
    expect(await new DraftSweep(repositories, media, logger).sweep()).toEqual({ rows: 1, bytes: 100 });
    expect(draftsOf(ended.sessionId)).toEqual([]);
  });

  it('after a sweep cut short between files and rows, the next one deletes the rows whose files are already gone', async () => {
    const { repositories, media, logger, repaint, draftsOf } = await setup();
    const ended = await repaint(0, GenerationStatus.FAILED, 100);
    const broken = Object.assign(Object.create(repositories) as InMemoryRepositories, {
      deleteEndedDrafts: async () => {
        throw new Error('Connection terminated unexpectedly');
      },
    });

    await expect(new DraftSweep(broken, media, logger).sweep()).rejects.toThrow('Connection terminated unexpectedly');
    for (const file of ended.files) expect(media.files.has(file)).toBe(false);
    expect(draftsOf(ended.sessionId)).toHaveLength(2);

    expect(await new DraftSweep(repositories, media, logger).sweep()).toEqual({ rows: 2, bytes: 0 });
    expect(draftsOf(ended.sessionId)).toEqual([]);
  });

  it('with nothing to sweep, changes nothing and says so at debug level', async () => {
    const { repositories, media, logger, lines, repaint } = await setup();
    await repaint(0, GenerationStatus.GENERATING_IMAGES);
    const before = structuredClone(repositories.images);

    expect(await new DraftSweep(repositories, media, logger).sweep()).toEqual({ rows: 0, bytes: 0 });
    expect(repositories.images).toEqual(before);
    expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([expect.objectContaining({ level: 20, rows: 0, bytes: 0 })]);
  });
});
