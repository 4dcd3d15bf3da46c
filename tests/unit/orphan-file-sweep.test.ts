import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GenerationStatus, ImageType } from '../../src/entities/index.js';
import type { ProcessLock } from '../../src/ports/process-lock.js';
import { DraftSweep } from '../../src/services/generation/draft-sweep.js';
import { MediaSweep, MediaSweepOutcome } from '../../src/services/generation/media-sweep.js';
import { ORPHAN_FILE_GRACE_MS, OrphanFileSweep } from '../../src/services/generation/orphan-file-sweep.js';
import { InMemoryMediaStore } from '../support/in-memory-media-store.js';
import { InMemoryRepositories } from '../support/in-memory-repositories.js';
import { saveCompletedBook, savePicture, startRepaint } from '../support/saved-books.js';

interface LogLine {
  level: number;
  msg: string;
  files?: number;
  bytes?: number;
}

const NOW = Date.parse('2026-12-01T12:00:00Z');
/** Written long enough ago to be swept when no record names it. */
const OLD = new Date(NOW - ORPHAN_FILE_GRACE_MS - 1);
/** Written a moment ago: its record may be about to be inserted. */
const FRESH = new Date(NOW - 1000);

/** A saved one-page book whose three pictures (character, scene, composite) are in use, written long ago, and a page repaint's drafts. */
async function setup() {
  const repositories = new InMemoryRepositories();
  const media = new InMemoryMediaStore();
  media.clock = () => OLD;
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const { story } = await saveCompletedBook(repositories, 1);
  const picture = (imageType: ImageType, pageIndex: number | null, pendingSessionId: string | null) =>
    savePicture(repositories, media, { storyId: story.id, imageType, pageIndex, pendingSessionId }, 10);
  const named = [await picture(ImageType.CHARACTER, null, null), await picture(ImageType.BACKGROUND, 0, null), await picture(ImageType.COMBINED, 0, null)];
  const repaint = await startRepaint(repositories, story.id, 0);
  named.push(await picture(ImageType.BACKGROUND, 0, repaint), await picture(ImageType.COMBINED, 0, repaint));

  /** A file no record names, written at `when`, of `bytes` bytes, under a key of the store's (or the given one). */
  const orphan = (when: Date, bytes: number, key = `images/${randomUUID()}.png`) => {
    media.clock = () => when;
    media.put(key, Buffer.alloc(bytes, 2));
    return key;
  };
  return { repositories, media, lines, logger, named, orphan, repaintSession: repaint };
}

describe('OrphanFileSweep', () => {
  it('removes the files no record names that are older than the grace period, and keeps fresh ones and every named file', async () => {
    const { repositories, media, lines, logger, named, orphan } = await setup();
    const old = [orphan(OLD, 100), orphan(OLD, 200)];
    const leftoverWrite = orphan(OLD, 50, `images/${randomUUID()}.png.partial`);
    const fresh = orphan(FRESH, 400);
    const writing = orphan(FRESH, 30, `images/${randomUUID()}.png.partial`);

    const result = await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep();

    expect(result).toEqual({ files: 3, bytes: 350 });
    for (const key of [...old, leftoverWrite]) expect(media.files.has(key)).toBe(false);
    for (const key of [...named, fresh, writing]) expect(media.files.has(key)).toBe(true);
    expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([
      expect.objectContaining({ level: 30, files: 3, bytes: 350, msg: 'swept 3 picture files no record names (350 bytes)' }),
    ]);
  });

  it('keeps the files of drafts of an ended repaint (the draft sweep removes them with their records)', async () => {
    const { repositories, media, logger, named, repaintSession } = await setup();
    await repositories.updateRunningSession(repaintSession, { status: GenerationStatus.CANCELLED });

    expect(await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 0, bytes: 0 });
    for (const key of named) expect(media.files.has(key)).toBe(true);
  });

  it('asks the database about the old files a batch at a time, never about all of them at once', async () => {
    const { repositories, media, logger, named, orphan } = await setup();
    const old = Array.from({ length: 4 }, () => orphan(OLD, 10));
    orphan(FRESH, 10);
    const asked: string[][] = [];
    const spy = {
      findNamedMediaKeys: (keys: readonly string[]) => {
        asked.push([...keys]);
        return repositories.findNamedMediaKeys(keys);
      },
    };

    expect(await new OrphanFileSweep(spy, media, logger, { now: () => NOW, batchSize: 3 }).sweep()).toEqual({ files: 4, bytes: 40 });
    // 5 named + 4 orphans, all old; the fresh file is never looked up.
    expect(asked.map((keys) => keys.length)).toEqual([3, 3, 3]);
    expect(new Set(asked.flat())).toEqual(new Set([...named, ...old]));
    for (const key of old) expect(media.files.has(key)).toBe(false);
  });

  it('removes nothing when most old files are named by no record (MEDIA_DIR of another database), and warns saying so', async () => {
    const { repositories, media, lines, logger, named, orphan } = await setup();
    // 6 unnamed against 5 named: more than half of the old files.
    const old = Array.from({ length: 6 }, () => orphan(OLD, 10));

    expect(await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 0, bytes: 0 });
    for (const key of [...named, ...old]) expect(media.files.has(key)).toBe(true);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        unnamed: 6,
        old: 11,
        msg: expect.stringMatching(/^6 of the 11 picture files older than an hour in MEDIA_DIR are named by no record of this database: .*Nothing was removed/),
      }),
    );
  });

  it('removes nothing when the database names no picture at all (a new or reset database beside old pictures)', async () => {
    const { media, lines, logger, named, orphan } = await setup();
    const old = orphan(OLD, 10);
    const emptyDatabase = { findNamedMediaKeys: async () => [] };

    expect(await new OrphanFileSweep(emptyDatabase, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 0, bytes: 0 });
    for (const key of [...named, old]) expect(media.files.has(key)).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, unnamed: 6, old: 6 }));
  });

  it('stops between two removals once its signal is aborted (the worker is stopping)', async () => {
    const { repositories, media, logger, named, orphan } = await setup();
    const old = [orphan(OLD, 10), orphan(OLD, 10), orphan(OLD, 10)];
    const stopping = new AbortController();
    const remove = media.remove.bind(media);
    media.remove = async (key) => {
      const bytes = await remove(key);
      stopping.abort(new Error('The worker is stopping'));
      return bytes;
    };

    await expect(new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep(stopping.signal)).rejects.toThrow('The worker is stopping');
    expect(old.filter((key) => media.files.has(key))).toHaveLength(2);
    for (const key of named) expect(media.files.has(key)).toBe(true);
  });

  it('leaves a file it cannot remove for the next sweep, with a warning, and removes the others', async () => {
    const { repositories, media, lines, logger, orphan } = await setup();
    const stuck = orphan(OLD, 100);
    const other = orphan(OLD, 200);
    media.failing.add(stuck);

    expect(await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 1, bytes: 200 });
    expect(media.files.has(stuck)).toBe(true);
    expect(media.files.has(other)).toBe(false);
    expect(lines.some((line) => line.level === 40 && line.msg.startsWith('could not remove a picture file no record names'))).toBe(true);

    media.failing.clear();
    expect(await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 1, bytes: 100 });
  });

  it('with no orphan, removes nothing and says so at debug level', async () => {
    const { repositories, media, lines, logger, named } = await setup();

    expect(await new OrphanFileSweep(repositories, media, logger, { now: () => NOW }).sweep()).toEqual({ files: 0, bytes: 0 });
    expect(media.removed).toEqual([]);
    expect([...media.files.keys()].sort()).toEqual([...named].sort());
    expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([expect.objectContaining({ level: 20, files: 0, bytes: 0 })]);
  });
});

/** A lock another process holds (`taken`) or nobody does; records whether the task ran while held. */
class FakeLock implements ProcessLock {
  held = false;
  constructor(private readonly taken: boolean) {}
  async runAlone(task: () => Promise<void>): Promise<boolean> {
    if (this.taken) return false;
    this.held = true;
    try {
      await task();
    } finally {
      this.held = false;
    }
    return true;
  }
}

describe('MediaSweep', () => {
  it('sweeps drafts and then orphan files while holding the lock', async () => {
    const { repositories, media, logger, orphan, repaintSession } = await setup();
    await repositories.updateRunningSession(repaintSession, { status: GenerationStatus.FAILED });
    const old = orphan(OLD, 10);
    const lock = new FakeLock(false);
    const order: string[] = [];
    const drafts = new DraftSweep(repositories, media, logger);
    const orphans = new OrphanFileSweep(repositories, media, logger, { now: () => NOW });
    const watch = (name: string, sweeper: { sweep(): Promise<unknown> }) => ({
      sweep: () => {
        order.push(`${name}:${lock.held ? 'held' : 'free'}`);
        return sweeper.sweep();
      },
    });

    expect(await new MediaSweep(lock, [watch('drafts', drafts), watch('orphans', orphans)], logger).sweep()).toBe(MediaSweepOutcome.SWEPT);
    expect(order).toEqual(['drafts:held', 'orphans:held']);
    expect(repositories.images.filter((image) => image.pendingSessionId === repaintSession)).toEqual([]);
    expect(media.files.has(old)).toBe(false);
  });

  it('skips the round, touching nothing, while another process holds the lock', async () => {
    const { repositories, media, lines, logger, orphan, repaintSession } = await setup();
    await repositories.updateRunningSession(repaintSession, { status: GenerationStatus.FAILED });
    const old = orphan(OLD, 10);
    const sweepers = [new DraftSweep(repositories, media, logger), new OrphanFileSweep(repositories, media, logger, { now: () => NOW })];

    expect(await new MediaSweep(new FakeLock(true), sweepers, logger).sweep()).toBe(MediaSweepOutcome.SKIPPED);
    expect(media.files.has(old)).toBe(true);
    expect(media.removed).toEqual([]);
    expect(repositories.images.filter((image) => image.pendingSessionId === repaintSession)).toHaveLength(2);
    expect(lines.some((line) => line.msg === 'another process is sweeping media: skipped this round')).toBe(true);
  });
});
