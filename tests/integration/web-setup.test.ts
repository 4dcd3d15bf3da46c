import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GenerationSessionsDocument, StoryDocument } from '../../src/client/generated/graphql.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { buildWebPage, launchChromium } from '../support/browser.js';
import { chromium, skipWithoutTool, toolAvailable } from '../support/environment.js';
import { repoFilesOf, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { buildTinyGgufModel, type TinyGgufModel } from '../support/tiny-gguf-model.js';

/**
 * A fresh machine, from the page: the server starts with nothing but its database (no picture model, no
 * AUTOMATIC1111; either a fake Ollama without the model, or no Ollama at all); the set-up panel says what
 * is missing with sizes and licences, its buttons fetch both models with progress bars (the story model
 * from the fake Ollama's /api/pull, or the embedded backend's GGUF from a fake Hugging Face Hub, which
 * also serves a tiny Stable Diffusion export; both under the catalog's default repositories), and then
 * Generate makes an illustrated book.
 */
declare const document: any;
declare const location: any;

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts/web');
const PICTURE_REPO = 'TheyCallMeHex/LCM-Dreamshaper-V7-ONNX';
const GGUF_REPO = 'Qwen/Qwen2.5-1.5B-Instruct-GGUF';
const GGUF_FILE = 'qwen2.5-1.5b-instruct-q4_k_m.gguf';

let webDir: string;
let browser: Browser;
let hub: FakeHub;
let tiny: TinyModel;
let gguf: TinyGgufModel;
let ollama: FakeOllama | null = null;
let server: TestServer | null = null;
let pageErrors: string[] = [];

beforeAll(async () => {
  if (!toolAvailable(chromium)) return;
  webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-web-setup-'));
  const [launched] = await Promise.all([launchChromium(), buildWebPage(webDir), fs.mkdir(artifacts, { recursive: true })]);
  browser = launched;
  tiny = await buildTinySdModel({ externalData: true, name: PICTURE_REPO });
  gguf = await buildTinyGgufModel();
  hub = await startFakeHub(
    new Map([
      [PICTURE_REPO, await repoFilesOf(tiny.dir)],
      [GGUF_REPO, new Map([[GGUF_FILE, { content: await fs.readFile(gguf.file), lfs: true }]])],
    ]),
  );
}, 60_000);

afterEach(async () => {
  await server?.stop();
  await OnnxRuntimeHost.releaseAll();
  await ollama?.close();
  server = null;
  ollama = null;
});

afterAll(async () => {
  await browser?.close();
  await hub?.close();
  await tiny?.remove();
  await gguf?.remove();
  if (webDir) await fs.rm(webDir, { recursive: true, force: true });
});

beforeEach((context) => {
  skipWithoutTool(chromium, context);
  pageErrors = [];
});

/** A server with nothing downloaded: its pictures and (embedded) story model come from the fake Hub. */
async function startBareServer(env: Record<string, string>): Promise<TestServer> {
  server = await startTestServer({
    env: { WEB_DIR: webDir, HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu', IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64', ...env },
  });
  return server;
}

async function openPage(server: TestServer): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
  });
  await page.goto(`${server.url}/`);
  return page;
}

const item = (page: Page, component: string) => page.locator(`.setup-item[data-component="${component}"]`);

/**
 * Generates a 2-page book from the page's form and waits for its progress panel to say COMPLETED
 * (`timeout` in ms); returns the saved story and its session, read back over GraphQL.
 */
async function generateBook(page: Page, server: TestServer, timeout: number) {
  await page.getByLabel('What is the story about?').fill('a lighthouse keeper who befriends a storm');
  await page.getByLabel('Pages').selectOption('2');
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.locator('#progress-panel[data-status="COMPLETED"]').waitFor({ timeout });
  const storyId = await page.waitForFunction(() => /#\/story\/([0-9a-f-]+)$/.exec(location.hash)?.[1]).then((handle) => handle.jsonValue() as Promise<string>);
  const { story } = await server.query(StoryDocument, { id: storyId });
  const { generationSessions } = await server.query(GenerationSessionsDocument, { status: ['COMPLETED'] });
  expect(generationSessions.edges).toHaveLength(1);
  return { story: story!, session: generationSessions.edges[0].node };
}

describe('the set-up panel', () => {
  it('on a bare server, shows what is missing with sizes and licences, downloads both models with progress bars, then makes a book', async () => {
    const fakeOllama = await startFakeOllama({ modelInstalled: false });
    ollama = fakeOllama;
    const server = await startBareServer({ OLLAMA_BASE_URL: fakeOllama.url });
    const page = await openPage(server);
    await page.getByRole('heading', { name: 'Set-up' }).waitFor();
    const pictures = item(page, 'PICTURE_MODEL');
    const story = item(page, 'STORY_MODEL');
    await expect(pictures.getAttribute('data-state')).resolves.toBe('MISSING');
    await expect(story.getAttribute('data-state')).resolves.toBe('MISSING');
    await expect(item(page, 'DATABASE').getAttribute('data-state')).resolves.toBe('READY');
    // Size and licence are there before anything starts.
    expect(await pictures.locator('.setup-license').textContent()).toContain('CreativeML OpenRAIL-M');
    expect(await story.locator('.setup-license').textContent()).toContain('Llama 3.2 Community License');
    expect(await story.getByRole('button').textContent()).toMatch(/Download \(2\.0 GB\)/);
    await expect(page.getByRole('progressbar').count()).resolves.toBe(0);
    await page.screenshot({ path: path.join(artifacts, 'setup-panel.png'), fullPage: true });

    // The picture model: held half-way by the Hub, so the bar is seen part-filled.
    const paused = hub.pause();
    await pictures.getByRole('button', { name: /^Download/ }).click();
    const bar = page.getByRole('progressbar', { name: 'Picture model download' });
    await paused.reached;
    // Some bytes are in (the first file's first half), far from all of them.
    await page.waitForFunction(() => {
      const item = document.querySelector('.setup-item[data-component="PICTURE_MODEL"]');
      const now = item?.querySelector('progress')?.getAttribute('aria-valuenow');
      const words = item?.querySelector('.setup-transfer')?.textContent ?? '';
      return now !== null && now !== undefined && Number(now) < 100 && /^[1-9]/.test(words);
    });
    expect(await bar.getAttribute('aria-valuetext')).toMatch(/ of /);
    expect(await pictures.locator('.setup-transfer').textContent()).toMatch(/^\d+(\.\d)? (B|kB|MB) of \d+(\.\d)? (B|kB|MB)/);
    await page.screenshot({ path: path.join(artifacts, 'setup-downloading.png'), fullPage: true });
    paused.release();
    await page.locator('.setup-item[data-component="PICTURE_MODEL"][data-state="READY"]').waitFor();

    await story.getByRole('button', { name: /^Download/ }).click();
    await page.locator('.setup-ready').waitFor();
    expect(await page.locator('.setup-ready').textContent()).toContain('All ready');
    expect(fakeOllama.pulls).toEqual(['llama3.2']);

    // A book, with pictures from the model the panel downloaded.
    const { story: saved } = await generateBook(page, server, 25_000);
    expect(saved.pages).toHaveLength(2);
    expect(saved.images.filter((image) => image.imageType === 'COMBINED')).toHaveLength(2);
    await page.screenshot({ path: path.join(artifacts, 'setup-first-book.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('with Ollama lacking the model and the embedded GGUF on disk, shows the story model ready and offers the pull, which moves it to Ollama', async () => {
    const fakeOllama = await startFakeOllama({ modelInstalled: false });
    ollama = fakeOllama;
    const server = await startBareServer({ TEXT_BACKEND: '', OLLAMA_BASE_URL: fakeOllama.url, EMBEDDED_MODEL_FILE: gguf.file, IMAGE_BACKEND: 'none' });
    expect(server.app.textBackend).toBe('embedded');
    const page = await openPage(server);
    // Nothing is missing, yet the panel stays: the story model offers the pull beside the embedded model in use.
    await page.getByRole('heading', { name: 'Set-up' }).waitFor();
    const story = item(page, 'STORY_MODEL');
    await expect(story.getAttribute('data-state')).resolves.toBe('READY');
    expect(await story.locator('.setup-message').textContent()).toContain(`the embedded model ${gguf.file} is used`);
    expect(await story.getByRole('button').textContent()).toMatch(/Download \(2\.0 GB\)/);
    // Held half-way: while it runs the story model stays ready, its bar beside it, also on a page opened meanwhile.
    const held = fakeOllama.pausePulls();
    await story.getByRole('button', { name: /^Download/ }).click();
    await held.reached;
    await page.getByRole('progressbar', { name: 'Story model download' }).waitFor();
    await expect(story.getAttribute('data-state')).resolves.toBe('READY');
    await page.reload();
    await page.getByRole('progressbar', { name: 'Story model download' }).waitFor();
    await expect(item(page, 'STORY_MODEL').getAttribute('data-state')).resolves.toBe('READY');
    expect(await item(page, 'STORY_MODEL').locator('.setup-message').textContent()).toContain('. Downloading Llama 3.2 3B Instruct (Ollama, Q4_K_M)');
    held.release();
    await page.locator('.setup-ready').waitFor();
    expect(await page.locator('.setup-ready').textContent()).toContain('story model (ollama)');
    expect(fakeOllama.pulls).toEqual(['llama3.2']);
    expect(pageErrors).toEqual([]);
  });

  it('with no Ollama at all, downloads the embedded story model and the picture model from the page, then makes a book', { timeout: 120_000 }, async () => {
    // TEXT_BACKEND unset (blank) and nothing listening for Ollama: start-up picks the embedded backend, whose model is not there.
    // One thread and a fixed seed, and a short story (the tiny model runs every page to its limit), as in embedded-books.test.ts.
    const server = await startBareServer({
      TEXT_BACKEND: '',
      OLLAMA_BASE_URL: 'http://127.0.0.1:9',
      EMBEDDED_THREADS: '1',
      EMBEDDED_SEED: '11',
      STORY_MAX_CHARS: '800',
    });
    expect(server.app.textBackend).toBe('embedded');
    const page = await openPage(server);
    await page.getByRole('heading', { name: 'Set-up' }).waitFor();
    const pictures = item(page, 'PICTURE_MODEL');
    const story = item(page, 'STORY_MODEL');
    await expect(story.getAttribute('data-state')).resolves.toBe('MISSING');
    await expect(pictures.getAttribute('data-state')).resolves.toBe('MISSING');
    // The embedded model is offered, with its catalog size and licence, before anything starts.
    expect(await story.locator('.setup-license').textContent()).toContain('Apache License 2.0');
    expect(await story.locator('.setup-action').textContent()).toContain('Qwen2.5 1.5B Instruct (GGUF, Q4_K_M)');
    expect(await story.getByRole('button').textContent()).toMatch(/Download \(1\.1 GB\)/);
    expect(await pictures.locator('.setup-license').textContent()).toContain('CreativeML OpenRAIL-M');

    await pictures.getByRole('button', { name: /^Download/ }).click();
    await story.getByRole('button', { name: /^Download/ }).click();
    await page.locator('.setup-ready').waitFor();
    expect(await page.locator('.setup-ready').textContent()).toContain('All ready');
    const downloaded = path.join(server.dataDir, 'models', 'text', GGUF_FILE);
    expect((await fs.readFile(downloaded)).equals(await fs.readFile(gguf.file))).toBe(true);
    await page.screenshot({ path: path.join(artifacts, 'setup-embedded-ready.png'), fullPage: true });

    // A book written by the model the panel downloaded, in this process, with pictures from the other one.
    const { story: saved, session } = await generateBook(page, server, 90_000);
    expect(saved.pages.map((bookPage) => bookPage.index)).toEqual([0, 1]);
    for (const bookPage of saved.pages) {
      expect(bookPage.text.trim()).not.toBe('');
      expect(bookPage.combinedImage).toMatchObject({ imageType: 'COMBINED', pageIndex: bookPage.index });
    }
    // Gibberish runs to its length limit: pages cut there are the only warnings allowed.
    expect(session.warningDetails.filter((warning) => warning.code !== 'TEXT_CUT')).toEqual([]);
    await page.screenshot({ path: path.join(artifacts, 'setup-embedded-book.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
