import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startServerProcess, type ServerProcess } from '../support/processes.js';
import { createTestClient, type TestClient } from '../support/test-client.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let ollama: FakeOllama;
let database: TestDatabase;
let dataDir: string;
let server: ServerProcess | null = null;
let client: TestClient | null = null;

beforeEach(async () => {
  // Slow enough that SIGTERM lands while the story is still being written.
  ollama = await startFakeOllama({ tokenDelayMs: { planner: 0, story: 15, character: 0, background: 0 } });
  database = await createTestDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-shutdown-'));
});

afterEach(async () => {
  await client?.close();
  await server?.kill('SIGKILL');
  await ollama.close();
  await database.drop();
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('SIGTERM to a production server', () => {
  // Through npm too: a supervisor stopping `npm start` signals npm, which must pass it on to the server.
  it.for([
    { how: 'the compiled server', viaNpm: false },
    { how: 'npm start', viaNpm: true },
  ])('lets the running generation finish and exits 0 ($how)', async ({ viaNpm }) => {
    server = await startServerProcess(
      'all-in-one',
      {
        NODE_ENV: 'production',
        DATABASE_URL: database.url,
        DATA_DIR: dataDir,
        OLLAMA_BASE_URL: ollama.url,
        IMAGE_BACKEND: 'none',
        SHUTDOWN_TIMEOUT_MS: '60000',
        JOB_ATTEMPTS: '1',
      },
      { viaNpm },
    );
    client = createTestClient(server.url!);
    const { startGeneration } = await client.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    await expect.poll(() => ollama.requests.some((request) => request.agent === 'story')).toBe(true);

    expect(await server.kill('SIGTERM')).toBe(0);
    expect(server.logs.some((line) => line.msg === 'second signal: exiting now')).toBe(false);
    const [row] = await database.sql<{ status: string }>('SELECT status FROM generation_sessions WHERE id = $1', [startGeneration.id]);
    expect(row.status).toBe('COMPLETED');
  });
});
