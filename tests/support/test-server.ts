import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Logger as TypeOrmLogger } from 'typeorm';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createTestClient, type TestClient } from './test-client.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestServerOptions {
  /** Environment on top of the test defaults (database, port, data dir). */
  env?: Record<string, string | undefined>;
  databaseLogger?: TypeOrmLogger;
  /** Reuse a database (e.g. to restart a server on the same data). */
  database?: TestDatabase;
  dataDir?: string;
}

/** An all-in-one server in this process on a fresh database, with a typed client for it. */
export interface TestServer extends Omit<TestClient, 'close'> {
  app: App;
  url: string;
  database: TestDatabase;
  dataDir: string;
  /**
   * Stops the server; keeps the database and data dir when `keepData` is set.
   * `graceMs` is how long running generations get before they are interrupted.
   */
  stop(options?: { keepData?: boolean; graceMs?: number }): Promise<void>;
  /** Drops the database and deletes the data dir (after `stop({ keepData: true })`; safe to repeat). */
  removeData(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-test-')));
  const removeData = async () => {
    await database.drop();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  let app: App;
  try {
    app = await startApp(configFor(database, dataDir, options.env), {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      databaseLogger: options.databaseLogger,
    });
  } catch (error) {
    // A server that never started leaves nothing behind, except data it was given to reuse.
    if (!options.database) await database.drop();
    if (!options.dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const url = app.http!.url;
  const client = createTestClient(url);
  let stopped: Promise<void> | null = null;

  return {
    app,
    url,
    database,
    dataDir,
    request: client.request,
    query: client.query,
    subscribe: client.subscribe,
    async stop({ keepData = false, graceMs = 2000 } = {}) {
      // Stops once: a test may stop a server the fixtures stop again afterwards.
      stopped ??= client.close().then(() => app.stop(graceMs));
      await stopped;
      if (!keepData) await removeData();
    },
    removeData,
  };
}

function configFor(database: TestDatabase, dataDir: string, env: TestServerOptions['env']) {
  return loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    // Ollama unless a test says otherwise: with TEXT_BACKEND unset a dead Ollama means the embedded model.
    TEXT_BACKEND: 'ollama',
    // One attempt: a failure shows at once; retry tests ask for more.
    JOB_ATTEMPTS: '1',
    // Every test talks from 127.0.0.1; the limit tests set their own.
    RATE_LIMIT_PER_MINUTE: '100000',
    MAX_SUBSCRIPTIONS_PER_CLIENT: '10000',
    ...env,
  });
}
