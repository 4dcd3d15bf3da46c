import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { test } from '../support/fixtures.js';
import { startServerProcess } from '../support/processes.js';

/** The `npm start` defaults: no DATABASE_URL, no image backend; only Ollama is the fake one. */
const it = test
  // biome-ignore lint/correctness/noEmptyPattern: Vitest reads a fixture's dependencies from this pattern; it has none.
  .extend('dataDir', { scope: 'file' }, async ({}, { onCleanup }) => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-embedded-'));
    onCleanup(() => fs.rm(dataDir, { recursive: true, force: true }));
    return dataDir;
  })
  .extend('app', { scope: 'file' }, async ({ ollama, dataDir }, { onCleanup }) => {
    const app = await startApp(loadConfig({ HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, OLLAMA_BASE_URL: ollama.url }), {
      logger: pino({ level: 'silent' }),
    });
    onCleanup(() => app.stop(2000));
    return app;
  });

async function graphql(app: App, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${app.http!.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data: Record<string, any>; errors?: unknown[] };
}

describe('the embedded database (PGlite, no DATABASE_URL)', () => {
  it('runs the migrations under DATA_DIR and completes concurrent generations text-only, with a warning', async ({ app, dataDir }) => {
    await expect(fs.stat(path.join(dataDir, 'pglite'))).resolves.toBeTruthy();
    const started = await Promise.all(
      ['a fox who learns to sail', 'a robot gardener'].map((prompt) =>
        graphql(app, 'mutation ($p: String!) { startGeneration(input: { prompt: $p }) { id } }', { p: prompt }),
      ),
    );
    const ids = started.map((result) => result.data.startGeneration.id as string);

    for (const id of ids) {
      await expect
        .poll(async () => (await graphql(app, 'query ($id: ID!) { generationSession(id: $id) { status } }', { id })).data.generationSession.status, {
          message: `session ${id} did not complete`,
          timeout: 20_000,
          interval: 25,
        })
        .toBe('COMPLETED');
    }
    const { data } = await graphql(app, '{ stories { title storyText characterDescription images { id } } }');
    expect(data.stories).toHaveLength(2);
    for (const story of data.stories) {
      expect(story.title).toBe('The Lighthouse Keeper and the Storm');
      expect(story.characterDescription).not.toBe('');
      expect(story.images).toEqual([]);
    }
    const sessions = await Promise.all(ids.map((id) => graphql(app, 'query ($id: ID!) { generationSession(id: $id) { status warnings } }', { id })));
    for (const { data: session } of sessions) {
      expect(session.generationSession).toEqual({
        status: 'COMPLETED',
        warnings: ['Images were not generated: no image backend is configured (set IMAGE_BACKEND).'],
      });
    }
  });

  it('pages stories by cursor and lists sessions with their codes on PGlite too (microsecond positions, row comparison, jsonb)', async ({ app }) => {
    // The two generations of the test above, once both are done.
    await expect
      .poll(async () => (await graphql(app, '{ generationSessions(status: [COMPLETED]) { totalCount } }')).data.generationSessions.totalCount, {
        message: 'the two generations did not complete',
        timeout: 20_000,
        interval: 50,
      })
      .toBe(2);
    const first = await graphql(app, '{ storyConnection(first: 1) { edges { node { id } } pageInfo { hasNextPage endCursor } totalCount } }');
    expect(first.data.storyConnection).toMatchObject({ totalCount: 2, pageInfo: { hasNextPage: true } });
    const second = await graphql(
      app,
      'query ($after: String) { storyConnection(first: 1, after: $after) { edges { node { id } } pageInfo { hasNextPage } } }',
      {
        after: first.data.storyConnection.pageInfo.endCursor,
      },
    );
    expect(second.data.storyConnection.pageInfo.hasNextPage).toBe(false);
    const pagedIds = [...first.data.storyConnection.edges, ...second.data.storyConnection.edges].map((edge: { node: { id: string } }) => edge.node.id);
    expect(new Set(pagedIds).size).toBe(2);
    const listed = await graphql(app, '{ generationSessions(status: [COMPLETED]) { totalCount edges { node { stageCode warningDetails { code } } } } }');
    expect(listed.data.generationSessions.totalCount).toBe(2);
    for (const edge of listed.data.generationSessions.edges) expect(edge.node).toEqual({ stageCode: 'COMPLETED', warningDetails: [{ code: 'IMAGES_OFF' }] });
  });
});

describe('a second server where the first runs', () => {
  it('on the same DATA_DIR refuses to start, saying the database is in use by the first, without a stack trace; the first carries on', async ({
    app,
    dataDir,
    ollama,
  }) => {
    const second = startServerProcess('all-in-one', { DATA_DIR: dataDir, OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'none' });
    const failure = await second.then(
      async (started) => {
        await started.kill('SIGTERM');
        return new Error('the second server started on a PGlite directory the first one has open');
      },
      (error: Error) => error,
    );
    expect(failure.message).toMatch(/exited with 1 before the log line/);
    expect(failure.message).toContain(`The embedded database in ${path.join(dataDir, 'pglite')} is in use by process ${process.pid} on this host (started `);
    expect(failure.message).not.toMatch(/^\s+at /m);
    const listed = await graphql(app, '{ stories(limit: 1) { id } }');
    expect(listed.errors).toBeUndefined();
  });

  it('on the same PORT refuses to start, naming the address in use, without a stack trace', async ({ app, dataDir, ollama }) => {
    const port = new URL(app.http!.url).port;
    const failure = await startServerProcess('all-in-one', {
      DATA_DIR: path.join(dataDir, 'second'),
      PORT: port,
      OLLAMA_BASE_URL: ollama.url,
      IMAGE_BACKEND: 'none',
    }).then(
      async (started) => {
        await started.kill('SIGTERM');
        return new Error('the second server started on a port the first one listens on');
      },
      (error: Error) => error,
    );
    expect(failure.message).toMatch(/exited with 1 before the log line/);
    expect(failure.message).toContain(`Port ${port} on 127.0.0.1 is in use by another program (another Story Agent?): stop it, or set PORT to a free port.`);
    expect(failure.message).not.toMatch(/^\s+at /m);
  });

  it('says where the page is when it starts, beside the GraphQL address', async ({ dataDir, ollama }) => {
    const started = await startServerProcess('all-in-one', { DATA_DIR: path.join(dataDir, 'third'), OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'none' });
    try {
      const listening = await started.waitForLog((line) => line.msg === 'Story Agent is listening');
      expect(listening).toMatchObject({ url: `${started.url}/graphql`, page: `${started.url}/` });
    } finally {
      await started.kill('SIGTERM');
    }
  });
});
