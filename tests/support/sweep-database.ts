import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll } from 'vitest';
import { closeDatabase, createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { type AppConfig, loadConfig } from '../../src/config.js';
import { createRedisNamespace } from './redis.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

/** A database of a test's own: on the test PostgreSQL server, or an embedded PGlite in a temporary folder. */
interface OwnDatabase {
  config: AppConfig['database'];
  drop(): Promise<void>;
}

/** Nothing else opens a test's embedded database, and PostgreSQL has no directory lock: losing it is a bug here. */
export function lockNeverLost(error: Error): never {
  throw new Error('the database lock was lost during the test', { cause: error });
}

/** Both databases the server runs on, by name, for `describe.each`; an embedded one lives in a temporary folder named `tmpPrefix`…. */
export function bothDatabases(tmpPrefix: string): [string, () => Promise<OwnDatabase>][] {
  return [
    [
      'PostgreSQL',
      async () => {
        const database = await createTestDatabase();
        return { config: { kind: 'postgres', url: database.url, poolSize: 5 }, drop: () => database.drop() };
      },
    ],
    [
      'embedded PGlite',
      async () => {
        const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), tmpPrefix));
        return { config: { kind: 'embedded', dataDir }, drop: () => fs.rm(dataDir, { recursive: true, force: true }) };
      },
    ],
  ];
}

/** What `useSweepDatabase` opens; every field is set once the describe block's beforeAll has run. */
export interface SweepDatabase {
  dataSource: DataSource;
  repository: TypeOrmStoryRepository;
  /** An empty temporary folder of the block's own, for media directories. */
  tmp: string;
}

/**
 * Registers, in the calling describe block, a beforeAll that creates a database with `create`, migrates and opens
 * it with a repository (writes serialised on an embedded one, as the server does), and makes a temporary folder
 * named `tmpPrefix`…; and an afterAll that closes and drops the database and removes the folder.
 */
export function useSweepDatabase(create: () => Promise<OwnDatabase>, tmpPrefix: string): SweepDatabase {
  const opened = {} as SweepDatabase;
  let database: OwnDatabase;
  beforeAll(async () => {
    database = await create();
    opened.dataSource = await openDatabase(createDataSource(database.config), database.config, { onLockLost: lockNeverLost });
    opened.repository = new TypeOrmStoryRepository(opened.dataSource, { serializeWrites: database.config.kind === 'embedded' });
    opened.tmp = await fs.mkdtemp(path.join(os.tmpdir(), tmpPrefix));
  });
  afterAll(async () => {
    await closeDatabase(opened.dataSource);
    await database.drop();
    await fs.rm(opened.tmp, { recursive: true, force: true });
  });
  return opened;
}

/**
 * A database, a Redis key prefix and a data folder (named `tmpPrefix`…) of the test's own, removed through
 * `onTestFinished`, and the configuration of a split-layout process (api or worker) on them, with no model server reachable.
 */
export async function splitLayoutConfig(
  onTestFinished: (cleanup: () => Promise<void>) => void,
  tmpPrefix: string,
): Promise<{ config: AppConfig; database: TestDatabase }> {
  const database = await createTestDatabase();
  const redis = createRedisNamespace();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), tmpPrefix));
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
  return { config, database };
}

/** Whether a file (or a link, followed) is at `file`. */
export function fileExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
