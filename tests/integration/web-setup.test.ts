import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StoryDocument } from '../../src/client/generated/graphql.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { buildWebPage, launchChromium } from '../support/browser.js';
import { chromium, skipWithoutTool, toolAvailable } from '../support/environment.js';
import { repoFilesOf, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/**
 * A fresh machine, from the page: the server starts with nothing but its database (a fake Ollama without
 * the model, no picture model, no AUTOMATIC1111); the set-up panel says what is missing with sizes and
 * licences, its buttons fetch both models (from the fake Ollama's /api/pull and a fake Hugging Face Hub
 * serving a tiny Stable Diffusion export under the catalog's default repository) with progress bars, and
 * then Generate makes an illustrated book.
 */
declare const document: any;
declare const location: any;

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts/web');
const PICTURE_REPO = 'SimianLuo/LCM_Dreamshaper_v7';

let webDir: string;
let browser: Browser;
let ollama: FakeOllama;
let hub: FakeHub;
let tiny: TinyModel;
let server: TestServer;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!toolAvailable(chromium)) return;
  webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-web-setup-'));
  const [launched] = await Promise.all([launchChromium(), buildWebPage(webDir), fs.mkdir(artifacts, { recursive: true })]);
  browser = launched;
  tiny = await buildTinySdModel({ externalData: true, name: PICTURE_REPO });
  hub = await startFakeHub(new Map([[PICTURE_REPO, await repoFilesOf(tiny.dir)]]));
  ollama = await startFakeOllama({ modelInstalled: false });
  server = await startTestServer({
    env: { WEB_DIR: webDir, OLLAMA_BASE_URL: ollama.url, HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu', IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64' },
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await OnnxRuntimeHost.releaseAll();
  await ollama?.close();
  await hub?.close();
  await tiny?.remove();
  if (webDir) await fs.rm(webDir, { recursive: true, force: true });
});

beforeEach((context) => {
  skipWithoutTool(chromium, context);
});

async function openPage(): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
  });
  await page.goto(`${server.url}/`);
  return page;
}

const item = (page: Page, component: string) => page.locator(`.setup-item[data-component="${component}"]`);

describe('the set-up panel', () => {
  it('on a bare server, shows what is missing with sizes and licences, downloads both models with progress bars, then makes a book', async () => {
    const page = await openPage();
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
    expect(ollama.pulls).toEqual(['llama3.2']);

    // A book, with pictures from the model the panel downloaded.
    await page.getByLabel('What is the story about?').fill('a lighthouse keeper who befriends a storm');
    await page.getByLabel('Pages').selectOption('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.locator('#progress-panel[data-status="COMPLETED"]').waitFor({ timeout: 25_000 });
    const storyId = await page
      .waitForFunction(() => /#\/story\/([0-9a-f-]+)$/.exec(location.hash)?.[1])
      .then((handle) => handle.jsonValue() as Promise<string>);
    const { story: saved } = await server.query(StoryDocument, { id: storyId });
    expect(saved!.pages).toHaveLength(2);
    expect(saved!.images.filter((image) => image.imageType === 'COMBINED')).toHaveLength(2);
    await page.screenshot({ path: path.join(artifacts, 'setup-first-book.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
