import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from './fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from './fake-ollama.js';
import { startServerProcess, type ProcessRole, type ServerProcess } from './processes.js';
import { createRedisNamespace, type TestRedisNamespace } from './redis.js';
import { createTestClient, type TestClient } from './test-client.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

/** The scaled-out layout's shared parts (fake model servers, one database, one Redis prefix, one data folder) and the processes started on them. */
export interface ScaledOutStack {
  ollama: FakeOllama;
  a1111: FakeAutomatic1111;
  database: TestDatabase;
  /** The Redis processes started from now on use; a test may point it at a Redis of its own. */
  redis: TestRedisNamespace;
  /** Every process started through `start`, still running or not; killed by `close`. */
  processes: ServerProcess[];
  /** Starts an API, worker or all-in-one process (compiled: `node scripts/build.mjs` first) on the shared parts; an `env` value undefined unsets that variable. */
  start(role: ProcessRole, env?: Record<string, string | undefined>): Promise<ServerProcess>;
  /** A GraphQL client of a started process, closed by `close`. */
  client(server: ServerProcess): TestClient;
  close(): Promise<void>;
}

/**
 * Starts what API and worker processes share, as `npm run start:api` / `start:worker` would be run:
 * quick job locks and heartbeats, so a killed worker's job is taken over within a test.
 */
export async function startScaledOutStack(name: string): Promise<ScaledOutStack> {
  const ollama = await startFakeOllama();
  const a1111 = await startFakeAutomatic1111();
  const database = await createTestDatabase();
  const redis = createRedisNamespace();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `story-agent-${name}-`));
  const processes: ServerProcess[] = [];
  const clients: TestClient[] = [];
  const stack: ScaledOutStack = {
    ollama,
    a1111,
    database,
    redis,
    processes,
    async start(role, env = {}) {
      const started = await startServerProcess(role, {
        DATABASE_URL: database.url,
        REDIS_URL: stack.redis.url,
        REDIS_PREFIX: stack.redis.prefix,
        // Media written by the worker is served by the API: one folder for all, as shared storage would be.
        DATA_DIR: dataDir,
        OLLAMA_BASE_URL: ollama.url,
        AUTOMATIC1111_URL: a1111.url,
        IMAGE_WIDTH: '64',
        IMAGE_HEIGHT: '64',
        JOB_ATTEMPTS: '1',
        JOB_LOCK_DURATION_MS: '1500',
        JOB_STALLED_INTERVAL_MS: '500',
        SESSION_HEARTBEAT_MS: '300',
        SHUTDOWN_TIMEOUT_MS: '200',
        ...env,
      });
      processes.push(started);
      return started;
    },
    client(server) {
      const created = createTestClient(server.url!);
      clients.push(created);
      return created;
    },
    async close() {
      await Promise.all(clients.map((client) => client.close()));
      await Promise.all(processes.map((child) => child.kill('SIGKILL')));
      await ollama.close();
      await a1111.close();
      await database.drop();
      await redis.cleanup();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
  return stack;
}
