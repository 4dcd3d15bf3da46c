import fs from 'node:fs';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { PGliteDriver } from 'typeorm-pglite';
import type { AppConfig } from '../config.js';
import { ENTITIES } from '../entities/index.js';
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

/** Opens the connection and brings the schema up to date; the same migrations run on PostgreSQL and PGlite. */
export async function openDatabase(dataSource: DataSource): Promise<DataSource> {
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  return dataSource;
}
