import { test as base } from 'vitest';
import type { Logger as TypeOrmLogger } from 'typeorm';
import { startFakeAutomatic1111, type FakeAutomatic1111, type FakeAutomatic1111Options } from './fake-automatic1111.js';
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from './fake-ollama.js';
import { createRedisNamespace, type TestRedisNamespace } from './redis.js';
import { startTestServer, type TestServer } from './test-server.js';

/**
 * The fake stack as Vitest fixtures: a fake Ollama, a fake AUTOMATIC1111, a Redis key prefix when asked
 * for, and an all-in-one test server wired to them on a database of its own. Each piece is started when
 * a test (or hook) names it and torn down by Vitest after the test or file, whether it passed, failed or
 * threw half-way through its set-up.
 *
 *   import { test as it } from '../support/fixtures.js';
 *   it.override('stack', { env: { GENERATION_CONCURRENCY: '4' } }); // top level: options for the whole file
 *   it('…', async ({ server, ollama }) => { … });
 *
 * `test` keeps one stack per file (for tests that leave the fakes as they found them);
 * `freshStackTest` starts a new one for every test (for tests that break or reconfigure the fakes),
 * and its options may be overridden per describe block.
 */
export interface StackOptions {
  /** Overrides for the fake Ollama (replies, delays, failures). */
  ollama?: Partial<FakeOllamaOptions>;
  automatic1111?: FakeAutomatic1111Options;
  /** The server's environment on top of the stack's: OLLAMA_BASE_URL, AUTOMATIC1111_URL, 64×64 pictures and, with `redis`, REDIS_URL/REDIS_PREFIX. */
  env?: Record<string, string | undefined>;
  /** Sees every SQL statement the server sends. */
  databaseLogger?: TypeOrmLogger;
  /** Runs the queue and the progress bus on Redis, under a key prefix of the stack's own (deleted afterwards). */
  redis?: boolean;
}

interface StartServerOptions {
  /** Environment on top of the stack's and the file's (`stack.env`). */
  env?: Record<string, string | undefined>;
  /** Starts on this (stopped) server's database and data dir, as a restart would. */
  reuse?: TestServer;
}

/** Starts another test server wired to the stack; every server it started is stopped, and its data removed, after the test. */
export type StartServer = (options?: StartServerOptions) => Promise<TestServer>;

type Cleanup = { onCleanup: (cleanup: () => Promise<void>) => void };

async function fakeOllama({ stack }: { stack: StackOptions }, { onCleanup }: Cleanup): Promise<FakeOllama> {
  const ollama = await startFakeOllama(stack.ollama);
  onCleanup(() => ollama.close());
  return ollama;
}

async function fakeAutomatic1111({ stack }: { stack: StackOptions }, { onCleanup }: Cleanup): Promise<FakeAutomatic1111> {
  const a1111 = await startFakeAutomatic1111(stack.automatic1111);
  onCleanup(() => a1111.close());
  return a1111;
}

async function redisNamespace({ stack }: { stack: StackOptions }, { onCleanup }: Cleanup): Promise<TestRedisNamespace | null> {
  if (!stack.redis) return null;
  const redis = createRedisNamespace();
  onCleanup(() => redis.cleanup());
  return redis;
}

interface Stack {
  stack: StackOptions;
  ollama: FakeOllama;
  a1111: FakeAutomatic1111;
  redis: TestRedisNamespace | null;
}

function stackEnv({ stack, ollama, a1111, redis }: Stack, env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    OLLAMA_BASE_URL: ollama.url,
    AUTOMATIC1111_URL: a1111.url,
    IMAGE_WIDTH: '64',
    IMAGE_HEIGHT: '64',
    ...(redis ? { REDIS_URL: redis.url, REDIS_PREFIX: redis.prefix } : {}),
    ...stack.env,
    ...env,
  };
}

async function stackServer({ stack, ollama, a1111, redis }: Stack, { onCleanup }: Cleanup): Promise<TestServer> {
  const server = await startTestServer({ env: stackEnv({ stack, ollama, a1111, redis }), databaseLogger: stack.databaseLogger });
  onCleanup(() => server.stop());
  return server;
}

async function serverStarter({ stack, ollama, a1111, redis }: Stack, { onCleanup }: Cleanup): Promise<StartServer> {
  const started: TestServer[] = [];
  onCleanup(async () => {
    // Every server first, then the data: a restarted server shares its predecessor's database.
    const stops = await Promise.allSettled(started.map((server) => server.stop({ keepData: true })));
    await Promise.all(started.map((server) => server.removeData()));
    const failed = stops.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return async ({ env, reuse } = {}) => {
    const server = await startTestServer({
      env: stackEnv({ stack, ollama, a1111, redis }, env),
      databaseLogger: stack.databaseLogger,
      database: reuse?.database,
      dataDir: reuse?.dataDir,
    });
    started.push(server);
    return server;
  };
}

/** One fake stack per test file; `startServer` gives a test servers of its own on that stack. */
export const test = base
  .extend('stack', { scope: 'file' }, {} as StackOptions)
  .extend('ollama', { scope: 'file' }, ({ stack }, cleanup) => fakeOllama({ stack }, cleanup))
  .extend('a1111', { scope: 'file' }, ({ stack }, cleanup) => fakeAutomatic1111({ stack }, cleanup))
  .extend('redis', { scope: 'file' }, ({ stack }, cleanup) => redisNamespace({ stack }, cleanup))
  .extend('server', { scope: 'file' }, ({ stack, ollama, a1111, redis }, cleanup) => stackServer({ stack, ollama, a1111, redis }, cleanup))
  .extend('startServer', ({ stack, ollama, a1111, redis }, cleanup) => serverStarter({ stack, ollama, a1111, redis }, cleanup));

/** A new fake stack for every test. */
export const freshStackTest = base
  .extend('stack', {} as StackOptions)
  .extend('ollama', ({ stack }, cleanup) => fakeOllama({ stack }, cleanup))
  .extend('a1111', ({ stack }, cleanup) => fakeAutomatic1111({ stack }, cleanup))
  .extend('redis', ({ stack }, cleanup) => redisNamespace({ stack }, cleanup))
  .extend('server', ({ stack, ollama, a1111, redis }, cleanup) => stackServer({ stack, ollama, a1111, redis }, cleanup))
  .extend('startServer', ({ stack, ollama, a1111, redis }, cleanup) => serverStarter({ stack, ollama, a1111, redis }, cleanup));
