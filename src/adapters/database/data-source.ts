import fs from 'node:fs';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import type { AppConfig } from '../../config.js';
import { lockDataDir } from './data-dir-lock.js';
import { ENTITIES } from '../../entities/index.js';
import { MIGRATIONS } from './migrations/index.js';

export interface DataSourceOptions {
  /** Receives every query TypeORM runs; used for slow-query logs and query counting. */
  logger?: TypeOrmLogger;
}

export function createDataSource(database: AppConfig['database'], options: DataSourceOptions = {}): DataSource {
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: false,
    synchronize: false,
    logger: options.logger,
    logging: options.logger ? ('all' as const) : false,
  };
  if (database.kind === 'postgres') {
    return new DataSource({ ...common, url: database.url, poolSize: database.poolSize });
  }
  fs.mkdirSync(database.dataDir, { recursive: true });
  return new DataSource({ ...common, driver: new PGliteDriver({ dataDir: database.dataDir }).driver });
}

/** Any fixed number: the key of the advisory lock that lets one process at a time migrate a shared PostgreSQL. */
const MIGRATION_LOCK_KEY = 7_305_113_201;

/** The embedded databases' directory locks, let go by closeDatabase. */
const locks = new WeakMap<DataSource, () => Promise<void>>();

export interface OpenDatabaseOptions {
  /**
   * Called, from a timer, when the embedded database's directory lock is lost while open (see
   * lockDataDir): another process may have the database open, so stop writing to it at once.
   * Unused with PostgreSQL.
   */
  onLockLost: (error: Error) => void;
}

/**
 * Opens the connection and brings the schema up to date; the same migrations
 * run on PostgreSQL and PGlite. API and worker processes starting together on
 * one PostgreSQL take turns, so no two run the same migration. PGlite's
 * directory is locked for this process first (see lockDataDir): throws
 * DatabaseInUseError while another process has it open (after waiting up to 30 s for a lock
 * left by a crashed one to go stale). Close with closeDatabase.
 */
export async function openDatabase(dataSource: DataSource, database: AppConfig['database'], options: OpenDatabaseOptions): Promise<DataSource> {
  if (database.kind === 'embedded') {
    const release = await lockDataDir(database.dataDir, { onLost: options.onLockLost });
    try {
      await dataSource.initialize();
      await dataSource.runMigrations({ transaction: 'each' });
    } catch (error) {
      if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
      await release();
      throw error;
    }
    locks.set(dataSource, release);
    return dataSource;
  }
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lock.release();
  }
  return dataSource;
}

/** Closes what openDatabase opened and lets go of the embedded database's directory. */
export async function closeDatabase(dataSource: DataSource): Promise<void> {
  try {
    await dataSource.destroy();
  } finally {
    const release = locks.get(dataSource);
    locks.delete(dataSource);
    await release?.();
  }
}
