import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { LocalMediaStore } from '../../src/adapters/media/local-media-store.js';
import { startApp } from '../../src/app.js';
import { type AppConfig, loadConfig } from '../../src/config.js';
import { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, ImageType } from '../../src/entities/enums.js';
import { DraftSweep } from '../../src/services/generation/draft-sweep.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import { createRedisNamespace } from '../support/redis.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** A database of this run's own: on the test PostgreSQL server, or an embedded PGlite in a temporary folder. */
interface Database {
  config: AppConfig['database'];
  drop(): Promise<void>;
}

/** Nothing else opens a test's embedded database, and PostgreSQL has no directory lock: losing it is a bug here. */
function lockNeverLost(error: Error): never {
  throw new Error('the database lock was lost during the test', { cause: error });
}

const databases: [string, () => Promise<Database>][] = [
  [
    'PostgreSQL',
    async () => {
      const database: TestDatabase = await createTestDatabase();
      return { config: { kind: 'postgres', url: database.url, poolSize: 5 }, drop: () => database.drop() };
    },
  ],
  [
    'embedded PGlite',
    async () => {
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-sweep-'));
      return { config: { kind: 'embedded', dataDir }, drop: () => fs.rm(dataDir, { recursive: true, force: true }) };
    },
  ],
];

describe.each(databases)('DraftSweep on %s', (_name, create) => {
  let database: Database;
  let dataSource: DataSource;
  let repository: TypeOrmStoryRepository;
  let mediaDir: string;
  let media: LocalMediaStore;

  beforeAll(async () => {
    database = await create();
    dataSource = await openDatabase(createDataSource(database.config), database.config, { onLockLost: lockNeverLost });
    repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: database.config.kind === 'embedded' });
    mediaDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-sweep-media-'));
    media = new LocalMediaStore(mediaDir, '/media');
  });

  afterAll(async () => {
    await closeDatabase(dataSource);
    await database.drop();
    await fs.rm(mediaDir, { recursive: true, force: true });
  });

  /** A saved two-page book with its page pictures in use. */
  async function savedBook(): Promise<{ storyId: string; inUse: string[] }> {
    const sessionId = randomUUID();
    await repository.createSession({
      id: sessionId,
      prompt: 'a race',
      options: { kind: GenerationKind.BOOK, style: null, seed: null, pageCount: 2 },
      stage: STAGE.queued,
      ownerId: null,
    });
    const page = { outline: 'o', sceneDescription: 'a meadow', characterSide: CharacterSide.LEFT, characterDistance: CharacterDistance.FAR };
    const story = await repository.saveBookOnce(
      { id: randomUUID(), title: 'T', prompt: 'a race', style: null, characterDescription: 'a fox', pages: [page, page] },
      sessionId,
    );
    const inUse = [];
    for (const pageIndex of [0, 1]) inUse.push(await picture(story.id, ImageType.BACKGROUND, pageIndex, null));
    await repository.updateRunningSession(sessionId, { status: GenerationStatus.COMPLETED });
    return { storyId: story.id, inUse };
  }

  /** A PNG-sized file in MEDIA_DIR and its record; returns the file's key. */
  async function picture(storyId: string, imageType: ImageType, pageIndex: number, pendingSessionId: string | null): Promise<string> {
    const filePath = await media.save(Buffer.alloc(1000, 7), 'png');
    const saved = await repository.saveImageOnce({
      id: randomUUID(),
      storyId,
      imageType,
      pageIndex,
      filePath,
      width: 64,
      height: 64,
      promptUsed: 'a meadow',
      seed: 3,
      pendingSessionId,
    });
    if (!saved) throw new Error('the draft was refused');
    return filePath;
  }

  /** A repaint of the page that saved its scene and composite as drafts while it ran, then left in `status`. */
  async function repaint(storyId: string, pageIndex: number, status: GenerationStatus): Promise<{ sessionId: string; files: string[] }> {
    const sessionId = randomUUID();
    await repository.createSession({
      id: sessionId,
      prompt: 'a race',
      options: { kind: GenerationKind.PAGE_REPAINT, style: null, seed: null, pageIndex, redescribe: false },
      stage: STAGE.queued,
      ownerId: null,
      storyId,
    });
    await repository.updateRunningSession(sessionId, { status: GenerationStatus.GENERATING_IMAGES });
    const files = [await picture(storyId, ImageType.BACKGROUND, pageIndex, sessionId), await picture(storyId, ImageType.COMBINED, pageIndex, sessionId)];
    if (status !== GenerationStatus.GENERATING_IMAGES) await repository.updateRunningSession(sessionId, { status });
    return { sessionId, files };
  }

  async function draftFiles(sessionId: string): Promise<string[]> {
    return (await repository.findDraftImages(sessionId)).map((image) => image.filePath).sort();
  }

  const exists = (key: string) =>
    fs.access(path.join(mediaDir, key)).then(
      () => true,
      () => false,
    );

  it("removes exactly an ended session's draft rows and files; a running session's stay", async () => {
    const first = await savedBook();
    const second = await savedBook();
    const ended = await repaint(first.storyId, 0, GenerationStatus.FAILED);
    const running = await repaint(first.storyId, 1, GenerationStatus.GENERATING_IMAGES);
    const pending = await repaint(second.storyId, 0, GenerationStatus.PENDING);
    const vanished = await repaint(second.storyId, 1, GenerationStatus.CANCELLED);
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
    const { storyId } = await savedBook();
    const running = await repaint(storyId, 0, GenerationStatus.GENERATING_IMAGES);
    const ids = (await repository.findDraftImages(running.sessionId)).map((image) => image.id);

    expect(await repository.deleteEndedDrafts(ids)).toEqual([]);
    expect(await draftFiles(running.sessionId)).toEqual([...running.files].sort());

    await repository.updateRunningSession(running.sessionId, { status: GenerationStatus.COMPLETED });
    expect((await repository.deleteEndedDrafts(ids)).sort()).toEqual([...ids].sort());
  });
});

describe('the sweep in the split layout', () => {
  it("runs in a worker at start-up, not in an API process, and leaves a running session's drafts", async ({ onTestFinished }) => {
    const database = await createTestDatabase();
    const redis = createRedisNamespace();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-sweep-app-'));
    onTestFinished(async () => {
      await database.drop();
      await redis.cleanup();
      await fs.rm(dataDir, { recursive: true, force: true });
    });
    const config = loadConfig({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      OLLAMA_BASE_URL: 'http://127.0.0.1:9',
      TEXT_BACKEND: 'ollama',
      IMAGE_BACKEND: 'none',
    });

    // What a killed process left: a failed repaint's drafts, beside a repaint another worker is still painting.
    const dataSource = await openDatabase(createDataSource(config.database), config.database, { onLockLost: lockNeverLost });
    const repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: false });
    const media = new LocalMediaStore(config.mediaDir, '/media');
    const bookSession = randomUUID();
    await repository.createSession({
      id: bookSession,
      prompt: 'a race',
      options: { kind: GenerationKind.BOOK, style: null, seed: null, pageCount: 2 },
      stage: STAGE.queued,
      ownerId: null,
    });
    const page = { outline: 'o', sceneDescription: 'a meadow', characterSide: CharacterSide.LEFT, characterDistance: CharacterDistance.FAR };
    const story = await repository.saveBookOnce(
      { id: randomUUID(), title: 'T', prompt: 'a race', style: null, characterDescription: 'a fox', pages: [page, page] },
      bookSession,
    );
    await repository.updateRunningSession(bookSession, { status: GenerationStatus.COMPLETED });
    const repaint = async (pageIndex: number, status: GenerationStatus) => {
      const sessionId = randomUUID();
      await repository.createSession({
        id: sessionId,
        prompt: 'a race',
        options: { kind: GenerationKind.PAGE_REPAINT, style: null, seed: null, pageIndex, redescribe: false },
        stage: STAGE.queued,
        ownerId: null,
        storyId: story.id,
      });
      await repository.updateRunningSession(sessionId, { status: GenerationStatus.GENERATING_IMAGES });
      for (const imageType of [ImageType.BACKGROUND, ImageType.COMBINED]) {
        const filePath = await media.save(Buffer.alloc(1000, 7), 'png');
        await repository.saveImageOnce({
          id: randomUUID(),
          storyId: story.id,
          imageType,
          pageIndex,
          filePath,
          width: 64,
          height: 64,
          promptUsed: 'a meadow',
          seed: 3,
          pendingSessionId: sessionId,
        });
      }
      if (status !== GenerationStatus.GENERATING_IMAGES) await repository.updateRunningSession(sessionId, { status });
      return sessionId;
    };
    const failed = await repaint(0, GenerationStatus.FAILED);
    const running = await repaint(1, GenerationStatus.GENERATING_IMAGES);
    const filesOf = async (sessionId: string) => (await repository.findDraftImages(sessionId)).map((image) => image.filePath);
    const failedFiles = await filesOf(failed);
    const runningFiles = await filesOf(running);
    const onDisk = (key: string) =>
      fs.access(path.join(config.mediaDir, key)).then(
        () => true,
        () => false,
      );

    try {
      const api = await startApp(config, { role: 'api', logger: pino({ level: 'silent' }) });
      await api.stop(0);
      expect(await filesOf(failed)).toHaveLength(2);

      const lines: { msg: string; rows?: number; bytes?: number }[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
      const worker = await startApp(config, { role: 'worker', logger });
      // Stopping waits for a sweep under way, so the start-up sweep has run by then.
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
