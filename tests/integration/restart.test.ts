import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, GenerationSessionDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
const servers: TestServer[] = [];

beforeEach(async () => {
  ollama = await startFakeOllama();
  a1111 = await startFakeAutomatic1111();
});

afterEach(async () => {
  const last = servers.pop();
  await last?.stop();
  servers.length = 0;
  await ollama.close();
  await a1111.close();
});

async function server(env: Record<string, string> = {}, reuse?: TestServer): Promise<TestServer> {
  const started = await startTestServer({
    env: { OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64', ...env },
    database: reuse?.database,
    dataDir: reuse?.dataDir,
  });
  servers.push(started);
  return started;
}

/** Starts a generation and stops the server (interrupting it) once the story is saved and images are being painted. */
async function interruptDuringImages(first: TestServer): Promise<string> {
  a1111.options.latencyMs = 10_000;
  const { startGeneration } = await first.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
  const subscription = first.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
  await subscription.waitFor((event) => event.generationProgress.stage === STAGE.painting);
  await first.stop({ keepData: true, graceMs: 0 });
  a1111.options.latencyMs = 0;
  return startGeneration.id;
}

describe('a server restart', () => {
  it('resumes an interrupted generation from what was saved: the story is not rewritten', async () => {
    const first = await server();
    const sessionId = await interruptDuringImages(first);
    const [left] = await first.database.sql<{ status: string; story_id: string | null }>('SELECT status, story_id FROM generation_sessions WHERE id = $1', [sessionId]);
    expect(left.status).toBe('GENERATING_IMAGES');
    expect(left.story_id).not.toBeNull();

    const second = await server({}, first);
    const events = await second.subscribe(GenerationProgressDocument, { sessionId }).done;
    expect(events.at(-1)!.generationProgress).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, storyId: left.story_id });

    const { generationSession } = await second.query(GenerationSessionDocument, { id: sessionId });
    expect(generationSession!.story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
    const agents = ollama.requests.map((request) => request.agent);
    // Planned once and written once; a planned book needs no describing.
    expect(agents).toEqual(['planner', 'story']);
    const [{ count }] = await second.database.sql<{ count: number }>('SELECT count(*)::int AS count FROM stories');
    expect(count).toBe(1);
  });

  it('marks a session FAILED ("interrupted by a server restart") once it has used up its resume attempts', async () => {
    const first = await server({ MAX_RUNS_PER_SESSION: '1' });
    const sessionId = await interruptDuringImages(first);

    const second = await server({ MAX_RUNS_PER_SESSION: '1' }, first);
    const events = await second.subscribe(GenerationProgressDocument, { sessionId }).done;
    const last = events.at(-1)!.generationProgress;
    expect(last.status).toBe('FAILED');
    expect(last.errorMessage).toMatch(/^Interrupted by a server restart and could not be resumed/);
    // The story written before the restart is kept.
    const { generationSession } = await second.query(GenerationSessionDocument, { id: sessionId });
    expect(generationSession!.story!.storyText).toContain('Mara');
  });

  it('starts sessions that were still queued when the server stopped', async () => {
    ollama.options.tokenDelayMs.story = 20;
    const first = await server({ GENERATION_CONCURRENCY: '1' });
    const running = await first.query(StartGenerationDocument, { input: { prompt: 'first' } });
    const queued = await first.query(StartGenerationDocument, { input: { prompt: 'second' } });
    await first.stop({ keepData: true, graceMs: 0 });

    const second = await server({}, first);
    for (const id of [running.startGeneration.id, queued.startGeneration.id]) {
      const events = await second.subscribe(GenerationProgressDocument, { sessionId: id }).done;
      expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');
    }
    const stuck = await second.database.sql(`SELECT id FROM generation_sessions WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`);
    expect(stuck).toEqual([]);
  });
});
