import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import type { Logger as TypeOrmLogger } from 'typeorm';
import WebSocket from 'ws';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestServerOptions {
  /** Environment on top of the test defaults (database, port, data dir). */
  env?: Record<string, string | undefined>;
  databaseLogger?: TypeOrmLogger;
  /** Reuse a database (e.g. to restart a server on the same data). */
  database?: TestDatabase;
  dataDir?: string;
}

export interface GraphQLResult<T> {
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

export interface TestServer {
  app: App;
  url: string;
  database: TestDatabase;
  dataDir: string;
  request<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResult<T>>;
  /** Throws on GraphQL errors; returns data. */
  query<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T>;
  subscribe<T, V>(document: TypedDocumentNode<T, V>, variables: V): Subscription<T>;
  /**
   * Stops the server; keeps the database and data dir when `keepData` is set.
   * `graceMs` is how long running generations get before they are interrupted.
   */
  stop(options?: { keepData?: boolean; graceMs?: number }): Promise<void>;
}

export interface Subscription<T> {
  events: T[];
  /** Resolves when the server completes the stream; rejects on an error. */
  done: Promise<T[]>;
  /** Resolves once an event matches. */
  waitFor(predicate: (event: T) => boolean): Promise<T>;
  dispose(): void;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const database = options.database ?? (await createTestDatabase());
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-test-')));
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    OLLAMA_BASE_URL: 'http://127.0.0.1:9',
    // One attempt: a failure shows at once; retry tests ask for more.
    JOB_ATTEMPTS: '1',
    ...options.env,
  });
  const app = await startApp(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), databaseLogger: options.databaseLogger });
  const url = app.http!.url;
  const clients: Client[] = [];

  const request = async <T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResult<T>> => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query: print(document), variables }),
    });
    return (await response.json()) as GraphQLResult<T>;
  };

  return {
    app,
    url,
    database,
    dataDir,
    request,
    async query(document, variables) {
      const result = await request(document, variables);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data!;
    },
    subscribe<T, V>(document: TypedDocumentNode<T, V>, variables: V): Subscription<T> {
      const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      clients.push(client);
      const events: T[] = [];
      const waiters: { predicate: (event: T) => boolean; resolve: (event: T) => void }[] = [];
      let dispose = () => {};
      const done = new Promise<T[]>((resolve, reject) => {
        dispose = client.subscribe<T>(
          { query: print(document), variables: variables as Record<string, unknown> },
          {
            next: (result) => {
              if (result.errors?.length) return reject(new Error(JSON.stringify(result.errors)));
              const event = result.data as T;
              events.push(event);
              for (const waiter of [...waiters]) {
                if (waiter.predicate(event)) {
                  waiters.splice(waiters.indexOf(waiter), 1);
                  waiter.resolve(event);
                }
              }
            },
            error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
            complete: () => resolve(events),
          },
        );
      });
      done.catch(() => undefined);
      return {
        events,
        done,
        dispose: () => dispose(),
        waitFor: (predicate) => {
          const seen = events.find(predicate);
          if (seen) return Promise.resolve(seen);
          return new Promise((resolve) => waiters.push({ predicate, resolve }));
        },
      };
    },
    async stop({ keepData = false, graceMs = 2000 } = {}) {
      await Promise.all(clients.map((client) => client.dispose()));
      await app.stop(graceMs);
      if (!keepData) {
        await database.drop();
        await fs.rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
