import { describe, expect } from 'vitest';
import { GenerationProgressDocument, GenerationSessionDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import type { FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { freshStackTest as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

/** Starts a generation and stops the server (interrupting it) once the story is saved and images are being painted. */
async function interruptDuringImages(first: TestServer, a1111: FakeAutomatic1111): Promise<string> {
  a1111.options.latencyMs = 10_000;
  const { startGeneration } = await first.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
  const subscription = first.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
  await subscription.waitFor((event) => event.generationProgress.stageCode === 'PAINTING');
  await first.stop({ keepData: true, graceMs: 0 });
  a1111.options.latencyMs = 0;
  return startGeneration.id;
}

describe('a server restart', () => {
  it('resumes an interrupted generation from what was saved: the story is not rewritten', async ({ startServer, ollama, a1111 }) => {
    const first = await startServer();
    const sessionId = await interruptDuringImages(first, a1111);
    const [left] = await first.database.sql<{ status: string; story_id: string | null }>('SELECT status, story_id FROM generation_sessions WHERE id = $1', [
      sessionId,
    ]);
    expect(left.status).toBe('GENERATING_IMAGES');
    expect(left.story_id).not.toBeNull();

    const second = await startServer({ reuse: first });
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

  it('marks a session FAILED ("interrupted by a server restart") once it has used up its resume attempts', async ({ startServer, a1111 }) => {
    const first = await startServer({ env: { MAX_RUNS_PER_SESSION: '1' } });
    const sessionId = await interruptDuringImages(first, a1111);

    const second = await startServer({ env: { MAX_RUNS_PER_SESSION: '1' }, reuse: first });
    const events = await second.subscribe(GenerationProgressDocument, { sessionId }).done;
    const last = events.at(-1)!.generationProgress;
    expect(last.status).toBe('FAILED');
    expect(last.errorMessage).toMatch(/^Interrupted by a server restart and could not be resumed/);
    // The story written before the restart is kept.
    const { generationSession } = await second.query(GenerationSessionDocument, { id: sessionId });
    expect(generationSession!.story!.storyText).toContain('Mara');
  });

  it('starts sessions that were still queued when the server stopped', async ({ startServer, ollama }) => {
    ollama.options.tokenDelayMs.story = 20;
    const first = await startServer({ env: { GENERATION_CONCURRENCY: '1' } });
    const running = await first.query(StartGenerationDocument, { input: { prompt: 'first' } });
    const queued = await first.query(StartGenerationDocument, { input: { prompt: 'second' } });
    await first.stop({ keepData: true, graceMs: 0 });

    const second = await startServer({ reuse: first });
    for (const id of [running.startGeneration.id, queued.startGeneration.id]) {
      const events = await second.subscribe(GenerationProgressDocument, { sessionId: id }).done;
      expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');
    }
    const stuck = await second.database.sql(`SELECT id FROM generation_sessions WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`);
    expect(stuck).toEqual([]);
  });
});
