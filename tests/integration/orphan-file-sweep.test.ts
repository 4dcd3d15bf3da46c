import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MEDIA_SWEEP_LOCK_KEY, PostgresAdvisoryLock } from '../../src/adapters/database/advisory-lock.js';
import { closeDatabase, createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { LocalMediaStore } from '../../src/adapters/media/local-media-store.js';
import { startApp } from '../../src/app.js';
import type { AppConfig } from '../../src/config.js';
import { ImageType } from '../../src/entities/enums.js';
import { MediaSweep, MediaSweepOutcome } from '../../src/services/generation/media-sweep.js';
import { ORPHAN_FILE_GRACE_MS, OrphanFileSweep } from '../../src/services/generation/orphan-file-sweep.js';
import { saveCompletedBook, savePicture, startRepaint } from '../support/saved-books.js';
import { bothDatabases, fileExists, lockNeverLost, splitLayoutConfig, useSweepDatabase } from '../support/sweep-database.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** Two grace periods ago: old enough to sweep. */
const longAgo = () => new Date(Date.now() - 2 * ORPHAN_FILE_GRACE_MS);

/** Saves a one-page book in `repository` with its character, scene and composite in `media`, and two drafts of a running repaint; answers every file's key. */
async function savedBook(repository: TypeOrmStoryRepository, media: LocalMediaStore): Promise<string[]> {
  const { story } = await saveCompletedBook(repository, 1);
  const repaint = await startRepaint(repository, story.id, 0);
  const pictures: [ImageType, number | null, string | null][] = [
    [ImageType.CHARACTER, null, null],
    [ImageType.BACKGROUND, 0, null],
    [ImageType.COMBINED, 0, null],
    [ImageType.BACKGROUND, 0, repaint],
    [ImageType.COMBINED, 0, repaint],
  ];
  const keys = [];
  for (const [imageType, pageIndex, pendingSessionId] of pictures) {
    keys.push(await savePicture(repository, media, { storyId: story.id, imageType, pageIndex, pendingSessionId }));
  }
  return keys;
}

/** A file no record names, written in `mediaDir` at `when`: a picture saved by a process killed before its insert, say. */
async function orphan(mediaDir: string, when: Date, bytes: number, name = `${randomUUID()}.png`): Promise<string> {
  const file = path.join(mediaDir, 'images', name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, Buffer.alloc(bytes, 9));
  await fs.utimes(file, when, when);
  return `images/${name}`;
}

describe.each(bothDatabases('story-agent-orphans-'))('OrphanFileSweep on %s and the local media store', (_name, create) => {
  const opened = useSweepDatabase(create, 'story-agent-orphans-media-');

  it('removes old files no record names; keeps fresh ones, named ones (however old), other files and whatever links point at', async () => {
    const { repository, tmp } = opened;
    const mediaDir = path.join(tmp, 'media');
    const outside = path.join(tmp, 'outside');
    await fs.mkdir(outside, { recursive: true });
    const media = new LocalMediaStore(mediaDir, '/media');
    const named = await savedBook(repository, media);
    for (const key of named) await fs.utimes(path.join(mediaDir, key), longAgo(), longAgo());
    const old = [await orphan(mediaDir, longAgo(), 300), await orphan(mediaDir, longAgo(), 200)];
    const leftoverWrite = await orphan(mediaDir, longAgo(), 100, `${randomUUID()}.png.partial`);
    const fresh = await orphan(mediaDir, new Date(), 400);
    const writing = await orphan(mediaDir, new Date(), 50, `${randomUUID()}.png.partial`);
    const foreign = await orphan(mediaDir, longAgo(), 10, 'notes.txt');
    // A link named like a key, to an old file outside MEDIA_DIR: neither the link nor its target is the store's.
    const target = path.join(outside, `${randomUUID()}.png`);
    await fs.writeFile(target, Buffer.alloc(500, 1));
    await fs.utimes(target, longAgo(), longAgo());
    const link = path.join(mediaDir, 'images', `${randomUUID()}.png`);
    await fs.symlink(target, link);

    const lines: { level: number; msg: string; files?: number; bytes?: number }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const result = await new OrphanFileSweep(repository, media, logger, { batchSize: 3 }).sweep();

    expect(result).toEqual({ files: 3, bytes: 600 });
    for (const key of [...old, leftoverWrite]) expect(await fileExists(path.join(mediaDir, key))).toBe(false);
    for (const key of [...named, fresh, writing, foreign]) expect(await fileExists(path.join(mediaDir, key))).toBe(true);
    expect(await fileExists(target)).toBe(true);
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
    expect(lines.filter((line) => line.msg.startsWith('swept'))).toEqual([
      expect.objectContaining({ level: 30, files: 3, bytes: 600, msg: 'swept 3 picture files no record names (600 bytes)' }),
    ]);
  });

  it('never follows an images folder that is a link out of MEDIA_DIR', async () => {
    const { repository, tmp } = opened;
    const mediaDir = path.join(tmp, 'linked-media');
    const elsewhere = path.join(tmp, 'elsewhere');
    await fs.mkdir(mediaDir, { recursive: true });
    const stranger = await orphan(elsewhere, longAgo(), 700);
    await fs.symlink(path.join(elsewhere, 'images'), path.join(mediaDir, 'images'));

    const result = await new OrphanFileSweep(repository, new LocalMediaStore(mediaDir, '/media'), pino({ level: 'silent' })).sweep();

    expect(result).toEqual({ files: 0, bytes: 0 });
    expect(await fileExists(path.join(elsewhere, stranger))).toBe(true);
  });

  it('answers which of a batch of keys a record names, drafts included', async () => {
    const { repository, tmp } = opened;
    const media = new LocalMediaStore(path.join(tmp, 'lookup'), '/media');
    const named = await savedBook(repository, media);
    const unknown = [`images/${randomUUID()}.png`, `images/${randomUUID()}.png.partial`];

    expect((await repository.findNamedMediaKeys([...unknown, ...named, named[0]])).sort()).toEqual([...named].sort());
    expect(await repository.findNamedMediaKeys([])).toEqual([]);
  });
});

describe('one media sweep at a time on PostgreSQL', () => {
  let database: TestDatabase;
  let config: AppConfig['database'];
  const dataSources: DataSource[] = [];
  let tmp: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    config = { kind: 'postgres', url: database.url, poolSize: 3 };
    // Two workers: a pool of connections each, as two processes have.
    for (let index = 0; index < 2; index += 1) dataSources.push(await openDatabase(createDataSource(config), config, { onLockLost: lockNeverLost }));
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-orphans-lock-'));
  });

  afterAll(async () => {
    for (const dataSource of dataSources) await closeDatabase(dataSource);
    await database.drop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('a second sweep while the first runs skips the round and removes nothing; once the first is done the next one runs', async () => {
    const media = new LocalMediaStore(tmp, '/media');
    const logger = pino({ level: 'silent' });
    const [first, second] = dataSources.map((dataSource) => ({
      lock: new PostgresAdvisoryLock(dataSource, MEDIA_SWEEP_LOCK_KEY),
      orphans: new OrphanFileSweep(new TypeOrmStoryRepository(dataSource, { serializeWrites: false }), media, logger),
    }));
    // Pictures in use, as old as the orphans: a sweep removes nothing while most old files are unnamed.
    const named = await savedBook(new TypeOrmStoryRepository(dataSources[0], { serializeWrites: false }), media);
    for (const key of named) await fs.utimes(path.join(tmp, key), longAgo(), longAgo());
    const old = await orphan(tmp, longAgo(), 100);

    // The first worker's sweep is held open at its start until the second has tried.
    let letGo = () => {};
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    let started = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const firstRound = new MediaSweep(
      first.lock,
      [
        {
          sweep: async () => {
            started();
            await held;
          },
        },
        first.orphans,
      ],
      logger,
    ).sweep();
    await running;

    expect(await new MediaSweep(second.lock, [second.orphans], logger).sweep()).toBe(MediaSweepOutcome.SKIPPED);
    expect(await fileExists(path.join(tmp, old))).toBe(true);

    letGo();
    expect(await firstRound).toBe(MediaSweepOutcome.SWEPT);
    expect(await fileExists(path.join(tmp, old))).toBe(false);

    // The lock was let go: the second worker's next round runs, and so does one after a sweep that failed.
    const later = await orphan(tmp, longAgo(), 100);
    const failing = { sweep: () => Promise.reject(new Error('Connection terminated unexpectedly')) };
    await expect(new MediaSweep(first.lock, [failing], logger).sweep()).rejects.toThrow('Connection terminated unexpectedly');
    expect(await new MediaSweep(second.lock, [second.orphans], logger).sweep()).toBe(MediaSweepOutcome.SWEPT);
    expect(await fileExists(path.join(tmp, later))).toBe(false);
  });

  it('a worker skips its start-up sweep while another process holds the lock, and sweeps at start-up otherwise; an API process never sweeps', async ({
    onTestFinished,
  }) => {
    const { config: appConfig, database: appDatabase } = await splitLayoutConfig(onTestFinished, 'story-agent-orphans-app-');
    const holder = new pg.Client({ connectionString: appDatabase.url });
    onTestFinished(() => holder.end().catch(() => undefined));
    const dataSource = await openDatabase(createDataSource(appConfig.database), appConfig.database, { onLockLost: lockNeverLost });
    try {
      const named = await savedBook(new TypeOrmStoryRepository(dataSource, { serializeWrites: false }), new LocalMediaStore(appConfig.mediaDir, '/media'));
      for (const key of named) await fs.utimes(path.join(appConfig.mediaDir, key), longAgo(), longAgo());
      const old = await orphan(appConfig.mediaDir, longAgo(), 100);
      const onDisk = (key: string) => fileExists(path.join(appConfig.mediaDir, key));

      const api = await startApp(appConfig, { role: 'api', logger: pino({ level: 'silent' }) });
      await api.stop(0);
      expect(await onDisk(old)).toBe(true);

      // Another worker is sweeping: this one's start-up round is skipped.
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock($1)', [MEDIA_SWEEP_LOCK_KEY]);
      const lines: { msg: string; files?: number; bytes?: number }[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
      const skipping = await startApp(appConfig, { role: 'worker', logger });
      // Stopping ends a sweep under way: let the start-up round be decided first.
      await vi.waitFor(() => expect(lines.some((line) => line.msg === 'another process is sweeping media: skipped this round')).toBe(true), {
        timeout: 15_000,
      });
      await skipping.stop(0);
      expect(await onDisk(old)).toBe(true);

      await holder.query('SELECT pg_advisory_unlock($1)', [MEDIA_SWEEP_LOCK_KEY]);
      lines.length = 0;
      const sweeping = await startApp(appConfig, { role: 'worker', logger });
      await vi.waitFor(() => expect(lines.some((line) => line.msg.startsWith('swept') && line.files !== undefined)).toBe(true), { timeout: 15_000 });
      await sweeping.stop(0);
      expect(await onDisk(old)).toBe(false);
      for (const key of named) expect(await onDisk(key)).toBe(true);
      expect(lines.filter((line) => line.msg.startsWith('swept') && line.files !== undefined)).toEqual([expect.objectContaining({ files: 1, bytes: 100 })]);
    } finally {
      await closeDatabase(dataSource);
    }
  });
});
