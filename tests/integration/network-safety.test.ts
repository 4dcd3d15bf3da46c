import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let production: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { ALLOWED_ORIGINS: 'https://friend.example' } });
  production = await startTestServer({ env: { NODE_ENV: 'production' } });
});

afterAll(async () => {
  await server?.stop();
  await production?.stop();
});

/** n fragments, each spreading the next twice: 2^n selections if walked. */
function fragmentBomb(levels: number): string {
  const lines = ['query Bomb { stories(limit: 1) { ...F0 } }'];
  for (let level = 0; level < levels; level += 1) lines.push(`fragment F${level} on Story { ...F${level + 1} ...F${level + 1} }`);
  lines.push(`fragment F${levels} on Story { id }`);
  return lines.join('\n');
}

async function post(url: string, body: string, contentType = 'application/json') {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json' }, body });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

/** One graphql-ws operation over a real WebSocket; the first result or error. */
async function overWebSocket(url: string, query: string): Promise<unknown> {
  const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    return await new Promise((resolve) => {
      client.subscribe({ query }, { next: resolve, error: resolve, complete: () => resolve('completed without a result') });
    });
  } finally {
    await client.dispose();
  }
}

/** Opens a raw WebSocket; resolves with "open" or the HTTP status and body of the refusal. */
function upgrade(url: string, { origin, protocols = ['graphql-transport-ws'] }: { origin?: string; protocols?: string[] }) {
  return new Promise<{ opened: true } | { opened: false; status: number; body: string }>((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, protocols, { headers: origin ? { origin } : {} });
    socket.on('open', () => {
      socket.close();
      resolve({ opened: true });
    });
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ opened: false, status: response.statusCode ?? 0, body }));
    });
    socket.on('error', (error) => reject(error));
  });
}

describe('a fragment bomb of 30 levels (1.2 kB, 2^30 selections if walked)', () => {
  const expected = `This operation costs ${1 + 2 ** 30} units (fields times list sizes); the limit is 50000. Ask for fewer fields, smaller pages or fewer aliases.`;

  it('is refused over HTTP with the cost it would have', async () => {
    const result = await post(server.url, JSON.stringify({ query: fragmentBomb(30) }));
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body).errors).toEqual([expect.objectContaining({ message: expected, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })]);
  });

  it('is refused over WebSocket the same way, code included', async () => {
    const result = (await overWebSocket(server.url, fragmentBomb(30))) as { message: string; extensions: unknown }[];
    expect(result).toEqual([expect.objectContaining({ message: expected, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })]);
  });
});

describe('WebSocket upgrades', () => {
  it("accepts the server's own origin, an allowed one, and clients that send none", async () => {
    expect(await upgrade(server.url, { origin: server.url })).toEqual({ opened: true });
    expect(await upgrade(server.url, { origin: 'https://friend.example' })).toEqual({ opened: true });
    expect(await upgrade(server.url, {})).toEqual({ opened: true });
  });

  it('refuses a page from another site before the upgrade, with a reason', async () => {
    const refused = await upgrade(server.url, { origin: 'https://evil.example' });
    expect(refused).toEqual({
      opened: false,
      status: 403,
      body: expect.stringContaining('WebSocket connections from https://evil.example are not allowed; add it to ALLOWED_ORIGINS'),
    });
  });

  it('refuses a client offering only the legacy graphql-ws subprotocol with a 400 that names the one to offer', async () => {
    const refused = await upgrade(server.url, { protocols: ['graphql-ws'] });
    expect(refused).toEqual({ opened: false, status: 400, body: expect.stringContaining('Offer the graphql-transport-ws subprotocol') });
  });
});

describe('errors from the HTTP layer', () => {
  it('answers a body over 100 kB with a JSON 413, no HTML, no stack', async () => {
    const result = await post(server.url, JSON.stringify({ query: `{ stories { id } }`, variables: { pad: 'x'.repeat(120_000) } }));
    expect(result.status).toBe(413);
    expect(result.type).toMatch(/^application\/json/);
    expect(JSON.parse(result.body)).toEqual({
      errors: [{ message: 'The request body is over 100kb; send a shorter prompt.', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
  });

  it('answers malformed JSON with a JSON 400', async () => {
    const result = await post(server.url, '{"query": ');
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body)).toEqual({ errors: [{ message: 'The request body is not valid JSON.', extensions: { code: 'MALFORMED_JSON' } }] });
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await fetch(`${server.url}/nowhere`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ errors: [{ message: 'Nothing at GET /nowhere. GraphQL is at /graphql.', extensions: { code: 'NOT_FOUND' } }] });
  });
});

describe('security headers', () => {
  it('forbid framing and set a CSP on every answer', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('in production', () => {
  it('turns introspection off', async () => {
    const result = JSON.parse((await post(production.url, JSON.stringify({ query: '{ __schema { queryType { name } } }' }))).body);
    expect(result.errors[0].message).toMatch(/introspection is not allowed/i);
  });

  it('gives no "Did you mean" suggestions, over HTTP or WebSocket', async () => {
    const http = JSON.parse((await post(production.url, JSON.stringify({ query: '{ storie { id } }' }))).body);
    expect(http.errors[0].message).toBe('Cannot query field "storie" on type "Query".');
    const ws = (await overWebSocket(production.url, '{ storie { id } }')) as { message: string }[];
    expect(ws[0].message).toBe('Cannot query field "storie" on type "Query".');
  });

  it('still suggests outside production', async () => {
    const http = JSON.parse((await post(server.url, JSON.stringify({ query: '{ storie { id } }' }))).body);
    expect(http.errors[0].message).toBe('Cannot query field "storie" on type "Query". Did you mean "stories" or "story"?');
  });
});
