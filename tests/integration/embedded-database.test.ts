import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';

let ollama: FakeOllama;
let app: App;
let dataDir: string;

beforeAll(async () => {
  ollama = await startFakeOllama();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-embedded-'));
  // The `npm start` defaults: no DATABASE_URL, no image backend.
  app = await startApp(loadConfig({ HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, OLLAMA_BASE_URL: ollama.url }), { logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await app.stop(2000);
  await ollama.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function graphql(query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${app.http!.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data: Record<string, any>; errors?: unknown[] };
}

describe('the embedded database (PGlite, no DATABASE_URL)', () => {
  it('runs the migrations under DATA_DIR and completes concurrent generations text-only, with a warning', async () => {
    await expect(fs.stat(path.join(dataDir, 'pglite'))).resolves.toBeTruthy();
    const started = await Promise.all(
      ['a fox who learns to sail', 'a robot gardener'].map((prompt) =>
        graphql('mutation ($p: String!) { startGeneration(input: { prompt: $p }) { id } }', { p: prompt }),
      ),
    );
    const ids = started.map((result) => result.data.startGeneration.id as string);

    for (const id of ids) {
      for (let attempt = 0; attempt < 200; attempt++) {
        const { data } = await graphql('query ($id: ID!) { generationSession(id: $id) { status } }', { id });
        if (data.generationSession.status === 'COMPLETED') break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    const { data } = await graphql('{ stories { title storyText characterDescription images { id } } }');
    expect(data.stories).toHaveLength(2);
    for (const story of data.stories) {
      expect(story.title).toBe('The Lighthouse Keeper and the Storm');
      expect(story.characterDescription).not.toBe('');
      expect(story.images).toEqual([]);
    }
    const sessions = await Promise.all(ids.map((id) => graphql('query ($id: ID!) { generationSession(id: $id) { status warnings } }', { id })));
    for (const { data: session } of sessions) {
      expect(session.generationSession).toEqual({
        status: 'COMPLETED',
        warnings: ['Images were not generated: no image backend is configured (set IMAGE_BACKEND).'],
      });
    }
  });
});
