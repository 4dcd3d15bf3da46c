import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

interface GraphQLResult<T> {
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

interface Subscription<T> {
  events: T[];
  /** Resolves when the server completes the stream; rejects on an error. */
  done: Promise<T[]>;
  /** Resolves once an event matches. */
  waitFor(predicate: (event: T) => boolean): Promise<T>;
  dispose(): void;
}

/** The typed documents over real HTTP (POST) and a real graphql-ws WebSocket. */
export interface TestClient {
  request<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResult<T>>;
  /** Throws on GraphQL errors; returns data. */
  query<T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<T>;
  subscribe<T, V>(document: TypedDocumentNode<T, V>, variables: V): Subscription<T>;
  close(): Promise<void>;
}

/** `apiKey`: sent as `Authorization: Bearer` over HTTP and as connectionParams.authorization over WebSocket. */
export function createTestClient(baseUrl: string, { apiKey }: { apiKey?: string } = {}): TestClient {
  const clients: Client[] = [];

  const request = async <T, V>(document: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResult<T>> => {
    const response = await fetch(`${baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      body: JSON.stringify({ query: print(document), variables }),
    });
    return (await response.json()) as GraphQLResult<T>;
  };

  return {
    request,
    async query(document, variables) {
      const result = await request(document, variables);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data!;
    },
    subscribe<T, V>(document: TypedDocumentNode<T, V>, variables: V): Subscription<T> {
      const client = createClient({
        url: `${baseUrl.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
      });
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
    async close() {
      await Promise.all(clients.map((client) => client.dispose()));
    },
  };
}
