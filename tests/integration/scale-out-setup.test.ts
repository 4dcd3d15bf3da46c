import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  SetupProgressDocument,
  SetupStatusDocument,
  StartGenerationDocument,
  StartModelDownloadDocument,
} from '../../src/client/generated/graphql.js';
import { repoFilesOf, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { startScaledOutStack, type ScaledOutStack } from '../support/scaled-out-stack.js';

/**
 * The set-up panel in the split layout (two API processes and a worker on one Redis and one
 * DATA_DIR): a download started through one API is seen, joined and followed through the other,
 * and a book the worker runs meanwhile waits for it, then is painted with it; an API process
 * killed while downloading has its download finished by the other.
 */
const PICTURE_REPO = 'TheyCallMeHex/LCM-Dreamshaper-V7-ONNX';

let model: TinyModel;
let hub: FakeHub;
let stack: ScaledOutStack;

beforeAll(async () => {
  model = await buildTinySdModel({ externalData: true, name: PICTURE_REPO });
});

afterAll(() => model.remove());

beforeEach(async () => {
  hub = await startFakeHub(new Map([[PICTURE_REPO, await repoFilesOf(model.dir)]]));
  stack = await startScaledOutStack('setup');
});

afterEach(async () => {
  await stack.close();
  await hub.close();
});

describe('a picture model download in the split layout', () => {
  it('is seen and joined on another API process, followed there to the end, and waited for by a book on the worker', async () => {
    const env = { AUTOMATIC1111_URL: undefined, IMAGE_BACKEND: undefined, HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu' };
    const [apiA, apiB] = await Promise.all([stack.start('api', env), stack.start('api', env)]);
    await stack.start('worker', env);
    const [a, b] = [stack.client(apiA), stack.client(apiB)];

    const paused = hub.pause();
    const started = await a.query(StartModelDownloadDocument, { component: 'PICTURE_MODEL' });
    expect(started.startModelDownload.state).toBe('RUNNING');
    await paused.reached;

    const { setupStatus } = await b.query(SetupStatusDocument);
    expect(setupStatus.components.find((component) => component.component === 'PICTURE_MODEL')).toMatchObject({
      state: 'DOWNLOADING',
      download: { state: 'RUNNING' },
    });
    const follower = b.subscribe(SetupProgressDocument, { component: 'PICTURE_MODEL' });
    const joined = await b.query(StartModelDownloadDocument, { component: 'PICTURE_MODEL' });
    expect(joined.startModelDownload.state).toBe('RUNNING');
    await follower.waitFor((event) => event.setupProgress.state === 'RUNNING');

    const { startGeneration } = await b.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const generation = b.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await generation.waitFor((event) => event.generationProgress.stage === 'Waiting for the picture model to download');
    paused.release();

    const events = (await follower.done).map((event) => event.setupProgress);
    expect(events.at(-1)).toMatchObject({ state: 'COMPLETED', errorMessage: null });
    expect(events.map((event) => event.bytesDone)).toEqual([...events.map((event) => event.bytesDone)].sort((x, y) => x - y));
    // One download: the repository was listed once, each file fetched once.
    expect(hub.requests.filter((request) => request.url.startsWith('/api/models/'))).toHaveLength(1);
    const fetched = hub.requests.filter((request) => request.url.includes('/resolve/')).map((request) => request.url);
    expect(new Set(fetched).size).toBe(fetched.length);

    const last = (await generation.done).at(-1)!.generationProgress;
    expect(last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    const { generationSession } = await a.query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession!.story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
  });

  // The claim lapses 30 s after the killed process last renewed it, and the other API looks every 30 s.
  const takeoverWithin = 150_000;
  it(
    'is taken over by another API process when the one running it is killed, resumed from its partial files, and the waiting book is painted',
    async () => {
      const env = { AUTOMATIC1111_URL: undefined, IMAGE_BACKEND: undefined, HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu' };
      const [apiA, apiB] = await Promise.all([stack.start('api', env), stack.start('api', env)]);
      await stack.start('worker', env);
      const [a, b] = [stack.client(apiA), stack.client(apiB)];

      const paused = hub.pause();
      await a.query(StartModelDownloadDocument, { component: 'PICTURE_MODEL' });
      await paused.reached;
      const follower = b.subscribe(SetupProgressDocument, { component: 'PICTURE_MODEL' });
      await follower.waitFor((event) => event.setupProgress.state === 'RUNNING');
      const { startGeneration } = await b.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
      const generation = b.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
      await generation.waitFor((event) => event.generationProgress.stage === 'Waiting for the picture model to download');

      await apiA.kill('SIGKILL');
      const fetchedBeforeTakeover = hub.requests.length;
      paused.release();

      const events = (await follower.done).map((event) => event.setupProgress);
      expect(events.map((event) => event.state)).not.toContain('FAILED');
      expect(events.at(-1)).toMatchObject({ state: 'COMPLETED', errorMessage: null });
      // The files half fetched before the kill were resumed, not fetched again from their start.
      expect(
        hub.requests.slice(fetchedBeforeTakeover).filter((request) => request.range?.startsWith('bytes=') && !request.range.startsWith('bytes=0-')),
      ).not.toEqual([]);

      const last = (await generation.done).at(-1)!.generationProgress;
      expect(last).toMatchObject({ status: 'COMPLETED', warnings: [] });
      const { generationSession } = await b.query(GenerationSessionDocument, { id: startGeneration.id });
      expect(generationSession!.story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
    },
    takeoverWithin,
  );
});
