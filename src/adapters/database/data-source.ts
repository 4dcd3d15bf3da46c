import fs from 'node:fs';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import type { AppConfig } from '../../config.js';
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

/**
 * Opens the connection and brings the schema up to date; the same migrations
 * run on PostgreSQL and PGlite. API and worker processes starting together on
 * one PostgreSQL take turns, so no two run the same migration.
 */
export async function openDatabase(dataSource: DataSource, database: AppConfig['database']): Promise<DataSource> {
  await dataSource.initialize();
  if (database.kind === 'embedded') {
    await dataSource.runMigrations({ transaction: 'each' });
    return dataSource;
  }
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
