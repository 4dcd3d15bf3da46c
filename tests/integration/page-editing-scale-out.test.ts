import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  RegeneratePageImageDocument,
  StartGenerationDocument,
  StoryDocument,
  type StoryFieldsFragment,
} from '../../src/client/generated/graphql.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import type { FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import type { ProcessRole, ServerProcess } from '../support/processes.js';
import { startScaledOutStack, type ScaledOutStack } from '../support/scaled-out-stack.js';
import type { TestClient } from '../support/test-client.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Painting a page again in the scaled-out layout: API and worker processes (compiled: `node scripts/build.mjs`
 * first) over BullMQ/Redis and one PostgreSQL, as tests/integration/scale-out.test.ts runs a new book.
 */

let stack: ScaledOutStack;
let a1111: FakeAutomatic1111;
let database: TestDatabase;

beforeEach(async () => {
  stack = await startScaledOutStack('scale-edit');
  ({ a1111, database } = stack);
});

afterEach(() => stack.close());

const start = (role: ProcessRole, env?: Record<string, string>) => stack.start(role, env);
const client = (server: ServerProcess) => stack.client(server);

async function makeBook(api: TestClient): Promise<StoryFieldsFragment> {
  const { startGeneration } = await api.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount: 2 } });
  const events = await api.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');
  return (await api.query(StoryDocument, { id: events.at(-1)!.generationProgress.storyId! })).story!;
}

describe('a page repaint with API and worker processes', () => {
  it('is run by the worker, replaced by a second worker when the first is killed mid-paint, and followed from the API', async () => {
    const api = client(await start('api'));
    const doomed = await start('worker');
    const book = await makeBook(api);

    a1111.options.latencyMs = 2000;
    const { regeneratePageImage: session } = await api.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 1, seed: 7 });
    const subscription = api.subscribe(GenerationProgressDocument, { sessionId: session.id });
    await subscription.waitFor((event) => event.generationProgress.stageCode === STAGE.repaintingPage.code);
    await doomed.kill('SIGKILL');
    a1111.options.latencyMs = 0;
    await start('worker');

    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, pageIndex: 1 });
    const percents = events.map((event) => event.progressPercentage);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    const after = (await api.query(StoryDocument, { id: book.id })).story!;
    expect(after.pages[0].combinedImage!.id).toBe(book.pages[0].combinedImage!.id);
    expect(after.pages[1].backgroundImage).toMatchObject({ seed: 7 });
    expect(after.pages[1].combinedImage!.id).not.toBe(book.pages[1].combinedImage!.id);
    expect(after.images).toHaveLength(5);
    const [{ count }] = await database.sql<{ count: number }>('SELECT count(*)::int AS count FROM generated_images');
    expect(count).toBe(5);
  });

  it('is cancelled from the API while no worker holds it: the drafts a killed worker saved go, rows and files', async () => {
    const apiProcess = await start('api');
    const api = client(apiProcess);
    const doomed = await start('worker');
    const book = await makeBook(api);
    // The new scene is saved as a draft; the pass over the composite then hangs, and the worker is killed there.
    a1111.options.img2imgLatencyMs = 60_000;
    const { regeneratePageImage: session } = await api.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 1 });
    const draft = await waitForDraft(session.id);
    await doomed.kill('SIGKILL');
    a1111.options.img2imgLatencyMs = 0;
    const mediaUrl = `${apiProcess.url}/media/${draft}`;
    expect((await fetch(mediaUrl)).status).toBe(200);

    const { cancelGeneration } = await api.query(CancelGenerationDocument, { id: session.id });
    expect(cancelGeneration.status).toBe('CANCELLED');
    const drafts = () => database.sql<{ count: number }>('SELECT count(*)::int AS count FROM generated_images WHERE pending_session_id IS NOT NULL');
    expect(await drafts()).toEqual([{ count: 0 }]);
    expect((await fetch(mediaUrl)).status).toBe(404);

    // A worker started now may find the job again (its lock ran out): it does not run a cancelled session.
    await start('worker');
    const other = await api.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 });
    const events = await api.subscribe(GenerationProgressDocument, { sessionId: other.regeneratePageImage.id }).done;
    expect(events.at(-1)!.generationProgress.status).toBe('COMPLETED');
    const after = (await api.query(StoryDocument, { id: book.id })).story!;
    expect(after.pages[1].backgroundImage!.id).toBe(book.pages[1].backgroundImage!.id);
    expect(after.pages[1].combinedImage!.id).toBe(book.pages[1].combinedImage!.id);
    expect(await drafts()).toEqual([{ count: 0 }]);
    expect((await fetch(mediaUrl)).status).toBe(404);
  });

  it('is cancelled from the API while the worker paints: the page keeps its pictures', async () => {
    const api = client(await start('api'));
    await start('worker');
    const book = await makeBook(api);
    a1111.options.latencyMs = 5000;
    const { regeneratePageImage: session } = await api.query(RegeneratePageImageDocument, { storyId: book.id, pageIndex: 0 });
    const subscription = api.subscribe(GenerationProgressDocument, { sessionId: session.id });
    await subscription.waitFor((event) => event.generationProgress.stageCode === STAGE.repaintingPage.code);
    await api.query(CancelGenerationDocument, { id: session.id });
    expect((await subscription.done).at(-1)!.generationProgress.status).toBe('CANCELLED');
    a1111.options.latencyMs = 0;
    const after = (await api.query(StoryDocument, { id: book.id })).story!;
    expect(after.pages.map((page) => page.combinedImage!.id)).toEqual(book.pages.map((page) => page.combinedImage!.id));
    const [{ count }] = await database.sql<{ count: number }>('SELECT count(*)::int AS count FROM generated_images WHERE pending_session_id IS NOT NULL');
    expect(count).toBe(0);
  });
});

/** The media key of the session's first draft, once its worker has saved one. */
async function waitForDraft(sessionId: string): Promise<string> {
  for (;;) {
    const [draft] = await database.sql<{ file_path: string }>('SELECT file_path FROM generated_images WHERE pending_session_id = $1', [sessionId]);
    if (draft) return draft.file_path;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
