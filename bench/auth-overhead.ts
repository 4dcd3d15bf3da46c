/**
 * What AUTH_MODE=api-key adds to one request: the same `stories(limit: 20)` query, sent
 * one at a time, against two in-process servers on one database, one with keys and one
 * without, in alternating rounds so machine noise falls on both alike.
 *
 *   npx tsx bench/auth-overhead.ts            # prints a markdown table
 *   AUTH_BENCH_REQUESTS=2000 npx tsx bench/auth-overhead.ts
 *
 * Needs PostgreSQL at TEST_POSTGRES_URL (the test default).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { hashApiKey } from '../src/services/auth/api-keys.js';
import { createTestDatabase } from '../tests/support/test-database.js';
import { startTestServer } from '../tests/support/test-server.js';

const REQUESTS = Number(process.env.AUTH_BENCH_REQUESTS ?? 1000);
const ROUNDS = 10;
const KEY = 'sa_auth-bench-key-0123456789abcdefghijklmnopqr';
const BODY = JSON.stringify({ query: '{ stories(limit: 20) { id title images { url } } }' });

const database = await createTestDatabase();
const none = await startTestServer({ database, env: { IMAGE_BACKEND: 'none' } });
const keyed = await startTestServer({ database, env: { IMAGE_BACKEND: 'none', AUTH_MODE: 'api-key' } });
await database.sql('INSERT INTO api_keys (id, owner_id, key_hash) VALUES ($1, $2, $3)', [randomUUID(), 'bench', hashApiKey(KEY)]);

async function run(url: string, headers: Record<string, string>, count: number, into: number[]): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const sentAt = performance.now();
    const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: BODY });
    const result = (await response.json()) as { errors?: unknown[] };
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    into.push(performance.now() - sentAt);
  }
}

const samples = { none: [] as number[], keyed: [] as number[] };
await run(none.url, {}, 50, []);
await run(keyed.url, { authorization: `Bearer ${KEY}` }, 50, []);
for (let round = 0; round < ROUNDS; round += 1) {
  await run(none.url, {}, REQUESTS / ROUNDS, samples.none);
  await run(keyed.url, { authorization: `Bearer ${KEY}` }, REQUESTS / ROUNDS, samples.keyed);
}
await keyed.stop({ keepData: true });
await none.stop();

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];
const row = (name: string, values: number[]) =>
  `| ${name} | ${quantile(values, 0.5).toFixed(2)} ms | ${quantile(values, 0.99).toFixed(2)} ms | ${(values.length / (values.reduce((a, b) => a + b, 0) / 1000)).toFixed(0)} req/s |`;
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(
  [
    `Machine: ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${os.loadavg()[0].toFixed(1)}; date: ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `| \`stories(limit: 20)\`, ${REQUESTS} sequential requests each, ${ROUNDS} alternating rounds | p50 | p99 | throughput |`,
    '| --- | ---: | ---: | ---: |',
    row('AUTH_MODE=none', samples.none),
    row('AUTH_MODE=api-key (SHA-256 + one indexed SELECT per request)', samples.keyed),
    `| **overhead at p50** | **${(quantile(samples.keyed, 0.5) - quantile(samples.none, 0.5)).toFixed(2)} ms** | | |`,
    '',
  ].join('\n'),
);
