import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import {
  GenerationProgressDocument,
  RegeneratePageImageDocument,
  type SetupComponent,
  SetupProgressDocument,
  SetupStatusDocument,
  StartGenerationDocument,
  StartModelDownloadDocument,
  StoryDocument,
  type SetupProgressSubscription,
  type SetupStatusQuery,
} from '../../src/client/generated/graphql.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { repoFilesOf, startFakeHub, type FakeHub, type HubFileSpec } from '../support/fake-hub.js';
import { freshStackTest } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

/**
 * The set-up panel's API over real HTTP and WebSocket: what is missing, the one action that fixes it
 * (size and licence first), the download it starts followed by subscription, a second request joining
 * the first, and a generation that waits for the model being downloaded. Stand-ins: a fake Ollama
 * (`/api/tags`, `/api/pull`) without the model, and a fake Hugging Face Hub serving a GGUF-shaped file
 * and a tiny Stable Diffusion export under the catalog's default repositories.
 */
const GGUF_REPO = 'Qwen/Qwen2.5-1.5B-Instruct-GGUF';
const GGUF_FILE = 'qwen2.5-1.5b-instruct-q4_k_m.gguf';
const PICTURE_REPO = 'TheyCallMeHex/LCM-Dreamshaper-V7-ONNX';

type Progress = SetupProgressSubscription['setupProgress'];
type Component = SetupStatusQuery['setupStatus']['components'][number];

/** A file with GGUF's header (magic, version 3, no tensors, no metadata) and random bytes after it. */
function ggufShaped(size: number): Buffer {
  const header = Buffer.alloc(24);
  header.write('GGUF', 0, 'ascii');
  header.writeUInt32LE(3, 4);
  return Buffer.concat([header, randomBytes(size - header.length)]);
}

const gguf = ggufShaped(300_000);
let tiny: TinyModel | null = null;

async function hubRepos(): Promise<Map<string, Map<string, HubFileSpec>>> {
  tiny ??= await buildTinySdModel({ externalData: true, name: PICTURE_REPO });
  return new Map([
    [
      GGUF_REPO,
      new Map([
        [GGUF_FILE, { content: gguf, lfs: true }],
        ['qwen2.5-1.5b-instruct-q8_0.gguf', { content: ggufShaped(1000), lfs: true }],
        ['LICENSE', { content: Buffer.from('Apache License 2.0\n'), lfs: false }],
      ]),
    ],
    [PICTURE_REPO, await repoFilesOf(tiny.dir)],
  ]);
}

afterAll(async () => {
  await OnnxRuntimeHost.releaseAll();
  await tiny?.remove();
});

// biome-ignore lint/correctness/noEmptyPattern: Vitest reads a fixture's dependencies from its first parameter's pattern; this one has none.
const it = freshStackTest.extend('hub', async ({}, { onCleanup }) => {
  const hub = await startFakeHub(await hubRepos());
  onCleanup(() => hub.close());
  return hub;
});

// A bare machine: Ollama runs without the model, no picture model, no AUTOMATIC1111.
it.override('stack', { ollama: { modelInstalled: false }, env: { AUTOMATIC1111_URL: undefined, IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64' } });

/** A machine with nothing set up: TEXT_BACKEND unset (blank), so a dead Ollama means the embedded model. */
const bareEnv = (hub: FakeHub) => ({ HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu', TEXT_BACKEND: '' });

async function components(server: TestServer): Promise<Record<SetupComponent, Component>> {
  const { setupStatus } = await server.query(SetupStatusDocument);
  return Object.fromEntries(setupStatus.components.map((component) => [component.component, component])) as Record<SetupComponent, Component>;
}

/** Starts the component's download and follows it to its end. */
async function download(server: TestServer, component: SetupComponent): Promise<Progress[]> {
  const { startModelDownload } = await server.query(StartModelDownloadDocument, { component });
  expect(startModelDownload.state).toMatch(/RUNNING|COMPLETED|FAILED/);
  const events = await server.subscribe(SetupProgressDocument, { component }).done;
  return events.map((event) => event.setupProgress);
}

function expectSteadyProgress(events: Progress[], total: number) {
  for (const [index, event] of events.entries()) {
    if (index > 0) expect(event.bytesDone).toBeGreaterThanOrEqual(events[index - 1].bytesDone);
    expect(event.bytesDone).toBeLessThanOrEqual(total);
    if (event.bytesPerSecond !== null) expect(event.bytesPerSecond).toBeGreaterThanOrEqual(0);
    if (event.secondsLeft !== null) expect(event.secondsLeft).toBeGreaterThanOrEqual(0);
  }
  expect(events.at(-1)).toMatchObject({ state: 'COMPLETED', bytesDone: total, bytesTotal: total, secondsLeft: 0, errorMessage: null });
}

describe('setupStatus', () => {
  it('names what is missing on a bare machine, each with one action, its size and its licence', async ({ startServer, hub, ollama }) => {
    const server = await startServer({ env: bareEnv(hub) });
    const { setupStatus } = await server.query(SetupStatusDocument);
    expect(setupStatus.ready).toBe(false);
    const byName = await components(server);
    expect(byName.STORY_MODEL).toMatchObject({
      state: 'MISSING',
      backend: 'ollama',
      message: `Ollama at ${ollama.url} does not have the model "llama3.2"; pull it`,
      action: {
        kind: 'OLLAMA_PULL',
        source: 'llama3.2',
        sizeBytes: 2019393189,
        destination: null,
        license: { id: 'llama3.2', name: 'Llama 3.2 Community License', commercialUse: true },
      },
      download: null,
    });
    expect(byName.PICTURE_MODEL).toMatchObject({
      state: 'MISSING',
      backend: 'onnx',
      action: {
        kind: 'PICTURE_MODEL_DOWNLOAD',
        source: PICTURE_REPO,
        destination: path.join(server.dataDir, 'models', 'sd'),
        license: { id: 'creativeml-openrail-m', commercialUse: true },
      },
    });
    expect(byName.PICTURE_MODEL.action?.sizeBytes).toBeGreaterThan(0);
    expect(byName.DATABASE).toMatchObject({ state: 'READY', backend: 'postgresql', action: null });
  });

  it('offers the embedded model when no Ollama answers, and says pictures are off when IMAGE_BACKEND=none', async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_BASE_URL: 'http://127.0.0.1:9', IMAGE_BACKEND: 'none' } });
    const byName = await components(server);
    expect(byName.STORY_MODEL).toMatchObject({
      state: 'MISSING',
      backend: 'embedded',
      message:
        'Ollama is not reachable at http://127.0.0.1:9: download the embedded story model (Qwen2.5 1.5B Instruct (GGUF, Q4_K_M)), or start Ollama and reload',
      action: {
        kind: 'EMBEDDED_MODEL_DOWNLOAD',
        source: `${GGUF_REPO}/${GGUF_FILE}`,
        destination: path.join(server.dataDir, 'models', 'text', GGUF_FILE),
        license: { id: 'apache-2.0', commercialUse: true },
      },
    });
    expect(byName.PICTURE_MODEL).toMatchObject({ state: 'OFF', backend: 'none', action: null });
  });

  it('with TEXT_BACKEND=ollama and no Ollama, says to start it and offers no download', async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_BASE_URL: 'http://127.0.0.1:9', TEXT_BACKEND: 'ollama' } });
    const byName = await components(server);
    expect(byName.STORY_MODEL).toMatchObject({
      state: 'UNREACHABLE',
      message: 'Ollama is not reachable at http://127.0.0.1:9: start it with `ollama serve`',
      action: null,
    });
    const refused = await server.request(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    expect(refused.errors?.[0]).toMatchObject({
      message: 'There is nothing to download for the story model: Ollama is not reachable at http://127.0.0.1:9: start it with `ollama serve`',
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const database = await server.request(StartModelDownloadDocument, { component: 'DATABASE' });
    expect(database.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('downloads', () => {
  it('pulls the story model through Ollama, streaming its progress, and the model is then ready', async ({ startServer, hub, ollama }) => {
    const server = await startServer({ env: bareEnv(hub) });
    const events = await download(server, 'STORY_MODEL');
    const layers = ollama.options.pullLayers.reduce((sum, size) => sum + size, 0);
    expectSteadyProgress(events, layers);
    expect(ollama.pulls).toEqual(['llama3.2']);
    expect((await components(server)).STORY_MODEL).toMatchObject({ state: 'READY', backend: 'ollama', action: null, download: { state: 'COMPLETED' } });
  });

  it('asks Ollama again when its pull stalls (DOWNLOAD_STALL_TIMEOUT_MS), and the progress goes on from where it was', async ({ startServer, hub, ollama }) => {
    ollama.options.pullStall = { kind: 'silent', atStep: 2, times: 1 };
    const server = await startServer({ env: { ...bareEnv(hub), DOWNLOAD_STALL_TIMEOUT_MS: '300' } });
    const events = await download(server, 'STORY_MODEL');
    const layers = ollama.options.pullLayers.reduce((sum, size) => sum + size, 0);
    expectSteadyProgress(events, layers);
    expect(ollama.pulls).toEqual(['llama3.2', 'llama3.2']);
    expect(ollama.abandonedPulls).toBe(1);
    expect((await components(server)).STORY_MODEL).toMatchObject({ state: 'READY', backend: 'ollama', download: { state: 'COMPLETED' } });
  });

  it('fails an Ollama pull that keeps stalling with a message that says what to do', async ({ startServer, hub, ollama }) => {
    ollama.options.pullStall = { kind: 'repeating', atStep: 2, times: Number.POSITIVE_INFINITY };
    const server = await startServer({ env: { ...bareEnv(hub), DOWNLOAD_STALL_TIMEOUT_MS: '300' } });
    const events = await download(server, 'STORY_MODEL');
    expect(events.at(-1)).toMatchObject({
      state: 'FAILED',
      errorMessage:
        `The story model download failed: Ollama at ${ollama.url} made no progress pulling "llama3.2" for 0.3 s after "pulling aaaaaaaaaaaa", ` +
        "with no new byte in 3 requests in a row: check Ollama's log, the network to it and that it can reach its registry (restart Ollama if it hangs), then start the download again; " +
        'Ollama keeps what it fetched and resumes from there',
    });
    expect(ollama.pulls).toHaveLength(4);
    expect((await components(server)).STORY_MODEL).toMatchObject({ state: 'MISSING', action: { kind: 'OLLAMA_PULL' } });
  });

  it("reports Ollama's own error when the pull fails, and the model stays missing", async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_MODEL: 'no-such-model' } });
    const events = await download(server, 'STORY_MODEL');
    expect(events.at(-1)).toMatchObject({
      state: 'FAILED',
      errorMessage: 'The story model download failed: Ollama could not pull "no-such-model": pull model manifest: file does not exist',
    });
    const story = (await components(server)).STORY_MODEL;
    expect(story).toMatchObject({ state: 'MISSING', action: { kind: 'OLLAMA_PULL', source: 'no-such-model', sizeBytes: null, license: null } });
    expect(story.download?.state).toBe('FAILED');
  });

  it('downloads the embedded GGUF, resuming a cut connection with a Range request, verified', async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_BASE_URL: 'http://127.0.0.1:9' } });
    const cut = 100_000;
    hub.dropAfter.set(GGUF_FILE, cut);
    const events = await download(server, 'STORY_MODEL');
    expectSteadyProgress(events, gguf.length);
    // One resumed request to the CDN, from what had arrived before the cut (bytes in flight are lost with the socket).
    const ranged = hub.requests.filter((request) => request.url.startsWith('/cdn/') && request.url.includes(GGUF_FILE) && request.range);
    expect(ranged).toHaveLength(1);
    const resumedAt = Number(ranged[0].range?.match(/^bytes=(\d+)-$/)?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(cut);
    const file = path.join(server.dataDir, 'models', 'text', GGUF_FILE);
    expect((await fs.readFile(file)).equals(gguf)).toBe(true);
    expect(hub.requests.some((request) => request.url.includes('q8_0'))).toBe(false);
    expect((await components(server)).STORY_MODEL).toMatchObject({
      state: 'READY',
      backend: 'embedded',
      message: `Ollama is not reachable at http://127.0.0.1:9: the embedded model ${file} is used`,
    });
  });

  it('refuses a GGUF whose sha256 does not match, says so, and keeps no file', async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_BASE_URL: 'http://127.0.0.1:9' } });
    hub.corrupt.add(GGUF_FILE);
    const events = await download(server, 'STORY_MODEL');
    expect(events.at(-1)?.state).toBe('FAILED');
    expect(events.at(-1)?.errorMessage).toMatch(
      new RegExp(
        `^The story model download failed: ${GGUF_FILE.replace(/\./g, '\\.')} failed its checksum \\(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\\); the damaged download was removed, run the pull again$`,
      ),
    );
    const folder = path.join(server.dataDir, 'models', 'text');
    expect(await fs.readdir(folder)).toEqual([]);
    expect((await components(server)).STORY_MODEL.state).toBe('MISSING');
  });

  it('downloads the picture model from the page’s button, and the next story is painted with it', async ({ startServer, hub }) => {
    const server = await startServer({ env: bareEnv(hub) });
    expect((await components(server)).PICTURE_MODEL.state).toBe('MISSING');
    const events = await download(server, 'PICTURE_MODEL');
    const listed = [...(await hubRepos()).get(PICTURE_REPO)!.entries()].filter(([file]) =>
      /^(model_index\.json|(tokenizer|scheduler)\/|(text_encoder|unet|vae_decoder)\/)/.test(file),
    );
    expectSteadyProgress(
      events,
      listed.reduce((sum, [, spec]) => sum + spec.content.length, 0),
    );
    expect((await components(server)).PICTURE_MODEL).toMatchObject({ state: 'READY', backend: 'onnx' });

    // The story model too, then a book: pictures come from the model that was just downloaded.
    await download(server, 'STORY_MODEL');
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const progress = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    const last = progress.at(-1)!.generationProgress;
    expect(last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    const { story } = await server.query(StoryDocument, { id: last.storyId! });
    expect(story!.images.map((image) => image.imageType).sort()).toEqual(['BACKGROUND', 'CHARACTER', 'COMBINED']);

    // Painting a page again uses that model too: IMAGE_BACKEND was left unset, so pictures are on, not "IMAGE_BACKEND=none".
    const { regeneratePageImage } = await server.query(RegeneratePageImageDocument, { storyId: story!.id, pageIndex: 0, seed: 7 });
    const repaint = await server.subscribe(GenerationProgressDocument, { sessionId: regeneratePageImage.id }).done;
    expect(repaint.at(-1)!.generationProgress).toMatchObject({ status: 'COMPLETED', warnings: [] });
  });

  it('joins a second request to the download already running', async ({ startServer, hub }) => {
    const server = await startServer({ env: { ...bareEnv(hub), OLLAMA_BASE_URL: 'http://127.0.0.1:9' } });
    const paused = hub.pause();
    const first = await server.query(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    const followers = [server.subscribe(SetupProgressDocument, { component: 'STORY_MODEL' })];
    await paused.reached;
    const second = await server.query(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    followers.push(server.subscribe(SetupProgressDocument, { component: 'STORY_MODEL' }));
    expect(first.startModelDownload.state).toBe('RUNNING');
    expect(second.startModelDownload).toMatchObject({ state: 'RUNNING', bytesTotal: gguf.length });
    expect((await components(server)).STORY_MODEL).toMatchObject({ state: 'DOWNLOADING', download: { state: 'RUNNING' } });
    paused.release();
    for (const follower of followers) expect((await follower.done).at(-1)?.setupProgress.state).toBe('COMPLETED');
    expect(hub.requests.filter((request) => request.url.startsWith('/api/models/'))).toHaveLength(1);
    expect(hub.requests.filter((request) => request.url.includes(GGUF_FILE) && !request.range)).toHaveLength(2);
  });

  it('a generation started while the story model downloads waits for it, says so, then writes the story', async ({ startServer, hub, ollama }) => {
    const server = await startServer({ env: { ...bareEnv(hub), IMAGE_BACKEND: 'none' } });
    const paused = ollama.pausePulls();
    await server.query(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    await paused.reached;
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who counts the stars' } });
    const generation = server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await generation.waitFor((event) => event.generationProgress.stage === 'Waiting for the story model to download');
    expect(ollama.requests).toHaveLength(0);
    paused.release();
    const events = await generation.done;
    expect(events.at(-1)?.generationProgress).toMatchObject({ status: 'COMPLETED', errorMessage: null });
    expect(events.some((event) => event.generationProgress.storyTextDelta)).toBe(true);
  });

  it('without a download running, a generation with the model missing fails with the message that says what to do', async ({ startServer, hub, ollama }) => {
    const server = await startServer({ env: { ...bareEnv(hub), IMAGE_BACKEND: 'none' } });
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a fox who counts the stars' } });
    const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    expect(events.at(-1)?.generationProgress).toMatchObject({
      status: 'FAILED',
      errorMessage: `Ollama at ${ollama.url} does not have the model "llama3.2": run \`ollama pull llama3.2\` (or set OLLAMA_MODEL to a model you have)`,
    });
    expect(events.some((event) => event.generationProgress.stage === 'Waiting for the story model to download')).toBe(false);
  });
});
