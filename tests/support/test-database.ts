import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDataSource } from '../../src/adapters/database/data-source.js';
import { MIGRATIONS } from '../../src/adapters/database/migrations/index.js';

/** The PostgreSQL server tests use; each test server gets a database of its own on it. */
const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  url: string;
  name: string;
  /** Runs SQL on this database over a connection of the test's own, bypassing the app. */
  sql<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  /** Runs the first `count` migrations (those not run yet) the way openDatabase runs them all: a migration test's "before" and "after". */
  migrateFirst(count: number): Promise<void>;
  drop(): Promise<void>;
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `story_agent_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async sql<T>(text: string, values?: unknown[]) {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        return (await client.query(text, values)).rows as T[];
      } finally {
        await client.end();
      }
    },
    async migrateFirst(count: number) {
      const dataSource = createDataSource({ kind: 'postgres', url: url.toString(), poolSize: 2 });
      dataSource.setOptions({ migrations: MIGRATIONS.slice(0, count) });
      await dataSource.initialize();
      try {
        await dataSource.runMigrations({ transaction: 'each' });
      } finally {
        await dataSource.destroy();
      }
    },
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
