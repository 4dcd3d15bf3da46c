import { createClient, type Client } from 'graphql-ws';
import { describe, expect } from 'vitest';
import WebSocket from 'ws';
import { ErrorCode } from '../../src/client/error-codes.js';
import { SINGLE_USER } from '../../src/services/auth/viewer.js';
import { test as it } from '../support/fixtures.js';

// A slow story keeps the generation (and so its subscriptions) open for the whole file.
it.override('stack', {
  ollama: { tokenDelayMs: { planner: 0, story: 200, character: 0, background: 0 } },
  env: { RATE_LIMIT_PER_MINUTE: '5', MAX_SUBSCRIPTIONS_PER_CLIENT: '2', MAX_SUBSCRIPTIONS_PER_CONNECTION: '20' },
});

const PROGRESS = 'subscription ($id: ID!) { generationProgress(sessionId: $id) { status } }';

/** Subscribes and resolves with the first thing that comes back: "event", or the errors. */
function firstAnswer(client: Client, sessionId: string): Promise<'event' | readonly { message: string; extensions?: Record<string, unknown> }[]> {
  return new Promise((resolve) => {
    client.subscribe(
      { query: PROGRESS, variables: { id: sessionId } },
      {
        next: (result) => resolve(result.errors ? result.errors : 'event'),
        error: (error) => resolve(Array.isArray(error) ? error : [{ message: String(error) }]),
        complete: () => undefined,
      },
    );
  });
}

describe('limits per client', () => {
  it('refuses HTTP requests past RATE_LIMIT_PER_MINUTE with a JSON 429 naming the limit', async ({ server }) => {
    const statuses: number[] = [];
    type Refusal = { errors: { message: string; extensions: { code: string } }[] };
    let refusal = null as Refusal | null;
    for (let i = 0; i < 6; i += 1) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ stories(limit: 1) { id } }' }),
      });
      statuses.push(response.status);
      if (response.status === 429) refusal = (await response.json()) as Refusal;
      else await response.text();
    }
    // Other tests in this file share the budget, so only the shape of the end is fixed: a refusal once the limit is used.
    expect(statuses.at(-1)).toBe(429);
    expect(refusal?.errors[0].extensions.code).toBe(ErrorCode.RATE_LIMITED);
    expect(refusal?.errors[0].message).toContain('5 a minute');
  });

  it('counts open subscriptions over all of a client’s connections', async ({ server }) => {
    const ws = `${server.url.replace('http', 'ws')}/graphql`;
    const first = createClient({ url: ws, webSocketImpl: WebSocket, retryAttempts: 0 });
    const second = createClient({ url: ws, webSocketImpl: WebSocket, retryAttempts: 0 });
    // Started straight through the app: this file's HTTP budget is the rate-limit test's.
    const session = await server.app.generations.start({ prompt: 'a slow story' }, SINGLE_USER);
    try {
      expect(await firstAnswer(first, session.id)).toBe('event');
      expect(await firstAnswer(first, session.id)).toBe('event');
      const refused = await firstAnswer(second, session.id);
      expect(refused).not.toBe('event');
      const [error] = refused as readonly { message: string; extensions?: Record<string, unknown> }[];
      expect(error.extensions?.code).toBe(ErrorCode.RATE_LIMITED);
      expect(error.message).toContain('MAX_SUBSCRIPTIONS_PER_CLIENT');

      // Closing the first connection frees its two: the second may subscribe again.
      await first.dispose();
      await expect.poll(() => firstAnswer(second, session.id), { message: 'a subscription once the others closed' }).toBe('event');
    } finally {
      await first.dispose();
      await second.dispose();
      await server.app.generations.cancel(session.id, SINGLE_USER).catch(() => undefined);
    }
  });

  it('refuses a subscription past MAX_SUBSCRIPTIONS_PER_CONNECTION on one connection, not on another', async ({ startServer }) => {
    const server = await startServer({ env: { MAX_SUBSCRIPTIONS_PER_CONNECTION: '1', MAX_SUBSCRIPTIONS_PER_CLIENT: '10' } });
    const ws = `${server.url.replace('http', 'ws')}/graphql`;
    const one = createClient({ url: ws, webSocketImpl: WebSocket, retryAttempts: 0 });
    const other = createClient({ url: ws, webSocketImpl: WebSocket, retryAttempts: 0 });
    const session = await server.app.generations.start({ prompt: 'a slow story' }, SINGLE_USER);
    try {
      expect(await firstAnswer(one, session.id)).toBe('event');
      const refused = await firstAnswer(one, session.id);
      expect(refused).not.toBe('event');
      expect((refused as readonly { extensions?: Record<string, unknown> }[])[0].extensions?.code).toBe(ErrorCode.RATE_LIMITED);
      expect(await firstAnswer(other, session.id)).toBe('event');
    } finally {
      await one.dispose();
      await other.dispose();
      await server.app.generations.cancel(session.id, SINGLE_USER).catch(() => undefined);
    }
  });
});
