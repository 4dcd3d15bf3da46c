import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { hashApiKey } from '../../src/services/auth/api-keys.js';
import { runStoryAgent } from '../support/story-agent-cli.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { createTestClient } from '../support/test-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** story-agent against servers that need keys, refuse big bodies, and hold hostile text. */

const KEY = 'sa_cli-test-key-0123456789abcdefghijklmnopqrstu';

let ollama: FakeOllama;
let server: TestServer;
let storyId: string;

beforeAll(async () => {
  ollama = await startFakeOllama();
  server = await startTestServer({ env: { AUTH_MODE: 'api-key', OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'none' } });
  await server.database.sql('INSERT INTO api_keys (id, owner_id, key_hash) VALUES ($1, $2, $3)', [randomUUID(), 'carol', hashApiKey(KEY)]);
  const client = createTestClient(server.url, { apiKey: KEY });
  const { startGeneration } = await client.query(StartGenerationDocument, { input: { prompt: 'a calm tale' } });
  const events = await client.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  storyId = events.at(-1)!.generationProgress.storyId!;
  // Escape codes that would hide text, retitle the terminal and clear the screen. The server cleans model output
  // of them, so they are put in the database directly, as an older row or another writer could have left them.
  await server.database.sql('UPDATE stories SET title = $1, story_text = $2 WHERE id = $3', [
    'Calm \x1b]0;pwned\x07Title',
    'A quiet \x1b[8mhidden\x1b[0m tale.\x1b[2J It ends.',
    storyId,
  ]);
  await client.close();
});

afterAll(async () => {
  await server?.stop();
  await ollama?.close();
});

describe('story-agent and API keys', () => {
  it('says a key is needed, not that the server is down', async () => {
    const run = await runStoryAgent(['list', '--url', server.url]);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toBe(`story-agent: The server at ${server.url} needs an API key: pass --api-key or set STORY_AGENT_API_KEY.\n`);
  });

  it('sends --api-key or STORY_AGENT_API_KEY', async () => {
    expect((await runStoryAgent(['list', '--url', server.url, '--api-key', KEY])).stdout).toContain(storyId);
    expect((await runStoryAgent(['list', '--url', server.url], { env: { STORY_AGENT_API_KEY: KEY } })).stdout).toContain(storyId);
  });
});

describe('story-agent output', () => {
  it('strips terminal control sequences from what the server sent', async () => {
    const run = await runStoryAgent(['show', storyId, '--url', server.url, '--api-key', KEY]);
    expect(run.code).toBe(0);
    const controlCharacters = [...run.stdout].filter((char) => /\p{Cc}/u.test(char) && char !== '\n' && char !== '\t');
    expect(controlCharacters).toEqual([]);
    expect(run.stdout).toContain('Calm Title');
    expect(run.stdout).toContain('A quiet hidden tale. It ends.');
  });

  it('reports a request over the body limit as a prompt too long, not a dead server', async () => {
    const run = await runStoryAgent(['generate', 'x'.repeat(110_000), '--url', server.url, '--api-key', KEY]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      'story-agent: Prompt too long: the server refused the request as too large (The request body is over 100kb; send a shorter prompt.)\n',
    );
  });
});
