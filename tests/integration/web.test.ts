import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContextOptions, Page, WebSocket } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  StoryDocument,
  type StoryFieldsFragment,
} from '../../src/client/generated/graphql.js';
import { startWebStack, type WebStack } from '../support/browser.js';
import { chromium, skipWithoutTool, toolAvailable } from '../support/environment.js';
import type { FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES, defaultFakeOllamaOptions, type FakeOllama } from '../support/fake-ollama.js';
import type { TestServer } from '../support/test-server.js';

/**
 * The web page end to end: built with Vite from web/, served by a real server
 * (fake Ollama and AUTOMATIC1111 behind it), driven in Debian's Chromium.
 */

// Callbacks given to page.evaluate run in the browser. The root tsconfig has no DOM
// types (Node only), so these module-scoped stand-ins type them loosely here.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const MutationObserver: any;

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts/web');
const TITLE = 'The Lighthouse Keeper and the Storm';
const PROMPT_LABEL = 'What is the story about?';

let stack: WebStack | undefined;
let browser: Browser;
let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let server: TestServer;
let pageErrors: string[] = [];
const pages: Page[] = [];

beforeAll(async () => {
  // Without Chromium every test reports a skip saying how to install it (beforeEach); CI=true fails here instead.
  if (!toolAvailable(chromium)) return;
  const [started] = await Promise.all([startWebStack('web'), fs.mkdir(artifacts, { recursive: true })]);
  stack = started;
  ({ browser, ollama, a1111, server } = started);
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

beforeEach((context) => {
  skipWithoutTool(chromium, context);
  Object.assign(ollama.options, defaultFakeOllamaOptions());
  a1111.options.latencyMs = 0;
  a1111.options.failWith = null;
  pageErrors = [];
});

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.context().close()));
  expect(pageErrors).toEqual([]);
});

async function openPage(hash = '', context: BrowserContextOptions = {}): Promise<Page> {
  const browserContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...context });
  const page = await browserContext.newPage();
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // The server's Content-Security-Policy must let the page do everything it does.
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) pageErrors.push(message.text());
  });
  await page.goto(`${server.url}/${hash}`);
  return page;
}

/** Records every state of the story text with the heading above it, to check what streaming showed. */
async function recordStoryText(page: Page): Promise<void> {
  await page.evaluate(() => {
    const records: { title: string; text: string }[] = [];
    window.storyTextRecords = records;
    const text = document.getElementById('story-text')!;
    const title = document.getElementById('story-title')!;
    const shown = () => Array.from(text.children, (paragraph: any) => paragraph.textContent ?? '').join('\n');
    new MutationObserver(() => records.push({ title: title.textContent ?? '', text: shown() })).observe(text, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

/** The story as the page shows it: one paragraph a line. */
async function shownText(page: Page): Promise<string> {
  return page.locator('#story-text p').evaluateAll((paragraphs) => paragraphs.map((paragraph: any) => paragraph.textContent ?? '').join('\n'));
}

async function storyTextRecords(page: Page): Promise<{ title: string; text: string }[]> {
  return page.evaluate(() => window.storyTextRecords as { title: string; text: string }[]);
}

/** Makes a story through the API (not the page), with the story agent's reply given. */
async function seedStory(title: string): Promise<StoryFieldsFragment> {
  ollama.options.replies.planner = JSON.stringify({ ...DEFAULT_PLAN, title });
  ollama.options.replies.story = `Once there was a tale called ${title}. It ended well.`;
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: `a story about ${title}` } });
  const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  const storyId = events.at(-1)!.generationProgress.storyId!;
  ollama.options.replies.story = DEFAULT_REPLIES.story;
  ollama.options.replies.planner = DEFAULT_REPLIES.planner;
  const { story } = await server.query(StoryDocument, { id: storyId });
  return story!;
}

async function loadedImages(page: Page): Promise<number> {
  return page.locator('#images img').evaluateAll((images) => images.filter((img: any) => img.complete && img.naturalWidth > 0).length);
}

describe('the web page', () => {
  it('streams the story text while it is written, then shows the character, background and combined pictures', async () => {
    ollama.options.tokenDelayMs.story = 25;
    const character = DEFAULT_PLAN.characterSheet;
    const setting = DEFAULT_PLAN.pages[0].scene;
    const page = await openPage();
    await recordStoryText(page);

    await page.getByLabel(PROMPT_LABEL).fill('a lighthouse keeper who befriends a storm');

    await page.getByLabel('Pages').selectOption('1');
    await page.getByLabel('Picture style').selectOption('watercolor');
    await page.getByRole('button', { name: 'Generate' }).click();

    // Some text is on the page while the stage is still "Writing the story".
    await page.waitForFunction(
      () =>
        document.getElementById('progress-panel')?.dataset.status === 'GENERATING_STORY' &&
        (document.getElementById('story-text')?.textContent ?? '').includes('Mara') &&
        document.getElementById('stage')?.textContent === 'Writing the story',
    );
    const partial = await shownText(page);

    await page.getByRole('heading', { name: TITLE }).waitFor();
    await page.locator('#progress-panel[data-status="COMPLETED"]').waitFor();
    await page.getByRole('heading', { name: 'Your story is ready' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#images img').length === 3);
    await page.waitForFunction(() => [...document.querySelectorAll('#images img')].every((img: any) => img.complete && img.naturalWidth > 0));
    expect(await loadedImages(page)).toBe(3);

    // The address names the story once the finished story is loaded, a moment after the heading says so.
    await page.waitForURL(/#\/story\/[0-9a-f-]+$/);
    const storyId = /#\/story\/([0-9a-f-]+)$/.exec(page.url())?.[1];
    expect(storyId).toBeTruthy();
    const { story } = await server.query(StoryDocument, { id: storyId! });
    expect(story!.title).toBe(TITLE);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(story!.storyText.length);
    expect(await shownText(page)).toBe(story!.storyText);
    expect(await page.locator('#progress-bar').evaluate((bar: any) => bar.value)).toBe(100);

    // The stream grew the text a piece at a time, and never showed the title line.
    const streamed = (await storyTextRecords(page)).filter((record) => record.title === 'Your story');
    expect(streamed.length).toBeGreaterThan(3);
    for (const record of streamed) expect(story!.storyText.startsWith(record.text)).toBe(true);
    expect(streamed.at(-1)!.text).toBe(story!.storyText);

    await expect(page.getByRole('img', { name: `The character: ${character}` }).count()).resolves.toBe(1);
    await expect(page.getByRole('img', { name: `The setting: ${setting}` }).count()).resolves.toBe(1);
    await expect(page.getByRole('img', { name: `${TITLE}: the character in the scene` }).count()).resolves.toBe(1);
    await page.locator(`#history-list a[href="#/story/${storyId}"][aria-current="page"]`).waitFor();
    expect(a1111.calls.at(-1)!.prompt).toContain('watercolor');

    await page.screenshot({ path: path.join(artifacts, 'story-page.png'), fullPage: true });
  });

  it('makes a book of the 4 pages offered: the plan and each page as it is written and painted, then reads it page by page', async () => {
    ollama.options.tokenDelayMs.story = 10;
    const page = await openPage();
    await page.getByLabel(PROMPT_LABEL).fill('a lighthouse keeper who befriends a storm');
    await expect(page.locator('#pages').inputValue()).resolves.toBe('4');
    await page.getByRole('button', { name: 'Generate' }).click();

    // The plan shows while the book is written: the character and one line per page.
    await page.locator('#page-list li').nth(3).waitFor();
    await expect(page.locator('#book-character').textContent()).resolves.toContain(DEFAULT_PLAN.characterSheet);
    await expect(page.locator('#page-list .page-line').allTextContents()).resolves.toEqual(
      DEFAULT_PLAN.pages.slice(0, 4).map((entry, index) => `${index + 1}. ${entry.outline}`),
    );

    await page.locator('#progress-panel[data-status="COMPLETED"]').waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#page-list li[data-state="ready"] img').length === 4);
    // The address names the story once the finished book is shown.
    await page.waitForURL(/#\/story\/[0-9a-f-]+$/);
    const storyId = /#\/story\/([0-9a-f-]+)$/.exec(page.url())![1];
    const { story } = await server.query(StoryDocument, { id: storyId });

    // Read it page by page: Next, the arrow keys, and the page list.
    const reader = async () => ({
      heading: await page.locator('#page-heading').textContent(),
      text: await page.locator('#page-text p').allTextContents(),
      picture: await page.locator('#reader .page-img').getAttribute('src'),
    });
    const expected = (index: number) => ({
      heading: `Page ${index + 1} of 4`,
      text: story!.pages[index].text.split('\n').filter(Boolean),
      picture: story!.pages[index].combinedImage!.url,
    });
    expect(await reader()).toEqual(expected(0));
    await page.getByRole('button', { name: 'Next →' }).click();
    expect(await reader()).toEqual(expected(1));
    await page.keyboard.press('ArrowRight');
    expect(await reader()).toEqual(expected(2));
    await page.keyboard.press('ArrowLeft');
    expect(await reader()).toEqual(expected(1));
    await page.locator('#page-list .page-link').nth(3).click();
    expect(await reader()).toEqual(expected(3));
    await expect(page.locator('#next-page').isDisabled()).resolves.toBe(true);
    await page.screenshot({ path: path.join(artifacts, 'book-page.png'), fullPage: true });

    // Opened again from its address, on a phone-sized screen, it reads the same way.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.locator('#page-heading').waitFor();
    expect(await reader()).toEqual(expected(0));
    await page.keyboard.press('ArrowRight');
    expect(await reader()).toEqual(expected(1));
  });

  it('opens a past story from the list, newest first, on a phone-sized screen, and downloads it as HTML, EPUB or PDF', async () => {
    const older = await seedStory('The Owl Who Counted Stars');
    const newer = await seedStory('The Baker of Cloud Bread');
    const page = await openPage('', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });

    const titles = page.locator('#history-list .history-title');
    await titles.first().waitFor();
    expect((await titles.allTextContents()).slice(0, 2)).toEqual([newer.title, older.title]);

    await page.getByRole('link', { name: new RegExp(older.title) }).click();
    await page.getByRole('heading', { name: older.title, level: 2 }).waitFor();
    expect(page.url()).toContain(`#/story/${older.id}`);
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('story-title');
    await page.waitForFunction(() => document.querySelectorAll('#images img').length === 3);
    await expect(shownText(page)).resolves.toBe(older.storyText);
    // Nothing sticks out sideways on a phone.
    await expect(page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).resolves.toBe(true);
    await page.screenshot({ path: path.join(artifacts, 'story-phone.png'), fullPage: true });

    // Three links, to the story's export URLs.
    const links = page.getByRole('group', { name: 'Download' }).getByRole('link');
    expect(await links.evaluateAll((anchors) => anchors.map((a) => [a.getAttribute('aria-label'), a.getAttribute('href')]))).toEqual([
      ['Download as HTML', `${server.url}/export/${older.id}.html`],
      ['Download as EPUB', `${server.url}/export/${older.id}.epub`],
      ['Download as PDF', `${server.url}/export/${older.id}.pdf`],
    ]);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download as HTML' }).click()]);
    // The server's Content-Disposition names the file after the title.
    expect(download.suggestedFilename()).toBe(`${older.title}.html`);
    const html = await fs.readFile((await download.path())!, 'utf8');
    expect(html).toContain(`<h1 dir="auto">${older.title}</h1>`);
    expect(html).toContain('It ended well.');
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(1);
    expect(html).not.toMatch(/(src|href)="(https?:|\/)/);
    const [pdf] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download as PDF' }).click()]);
    expect(pdf.suggestedFilename()).toBe(`${older.title}.pdf`);
    expect((await fs.readFile((await pdf.path())!)).subarray(0, 5).toString('ascii')).toBe('%PDF-');
  });

  it('can be used with the keyboard alone: generate, then cancel while the story is being written', async () => {
    ollama.options.tokenDelayMs.story = 150;
    const page = await openPage();

    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to the story form');
    await page.keyboard.press('Enter');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('prompt');
    await page.keyboard.type('a clockmaker who loses an hour');
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('style');
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('pages');
    // From the 4 pages offered down to 1.
    for (let press = 0; press < 3; press++) await page.keyboard.press('ArrowUp');
    await expect(page.locator('#pages').inputValue()).resolves.toBe('1');
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('generate');
    await page.keyboard.press('Enter');

    // Focus moves to the progress heading; the next Tab reaches Cancel.
    await page.locator('#progress-title:focus').waitFor();
    await page.waitForFunction(() => (document.getElementById('story-text')?.textContent ?? '').length > 0);
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('cancel');
    await page.keyboard.press('Enter');

    await page.getByRole('heading', { name: 'Cancelled' }).waitFor();
    await page.getByText('The generation was cancelled.').waitFor();
    await page.locator('#cancel').waitFor({ state: 'hidden' });
    const sessionId = /#\/session\/([0-9a-f-]+)$/.exec(page.url())![1];
    const { generationSession } = await server.query(GenerationSessionDocument, { id: sessionId });
    expect(generationSession).toMatchObject({ status: 'CANCELLED', story: null });
  });

  it('explains an empty prompt in plain words next to the field, and starts nothing', async () => {
    const page = await openPage();
    await page.getByRole('button', { name: 'Generate' }).click();

    const error = page.locator('#prompt-error');
    await error.waitFor();
    await expect(error.textContent()).resolves.toBe('The prompt is empty: describe the story you want in 1 to 2000 characters.');
    await expect(page.getByLabel(PROMPT_LABEL).getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('prompt');
    expect(page.url()).toBe(`${server.url}/`);

    // Typing clears the complaint.
    await page.getByLabel(PROMPT_LABEL).fill('a fox');
    await page.getByLabel('Pages').selectOption('1');
    await error.waitFor({ state: 'hidden' });
  });

  it('says in plain words why a story could not be written', async () => {
    ollama.options.failures.story = { kind: 'http-error', status: 500, message: 'CUDA out of memory' };
    const page = await openPage();
    await page.getByLabel(PROMPT_LABEL).fill('a dragon who is afraid of the dark');
    await page.getByLabel('Pages').selectOption('1');
    await page.getByRole('button', { name: 'Generate' }).click();

    const alert = page.locator('#alert');
    await alert.waitFor();
    const message = await alert.textContent();
    expect(message).toMatch(
      /^The story could not be written\. Ollama at http:\/\/127\.0\.0\.1:\d+ failed while writing the story with model llama3\.2 \(HTTP 500: CUDA out of memory\)/,
    );
    await page.getByRole('heading', { name: 'The story could not be written' }).waitFor();
    await expect(page.locator('#story').isHidden()).resolves.toBe(true);
  });

  it('keeps the story and explains in plain words when the pictures could not be painted', async () => {
    a1111.options.failWith = { status: 500, body: '{"error":"RuntimeError","detail":"out of VRAM"}' };
    const page = await openPage();
    await page.getByLabel(PROMPT_LABEL).fill('a lighthouse keeper who befriends a storm');
    await page.getByLabel('Pages').selectOption('1');
    await page.getByRole('button', { name: 'Generate' }).click();

    await page.getByRole('heading', { name: 'Your story is ready' }).waitFor();
    const warnings = page.getByRole('region', { name: 'Not everything worked' });
    await warnings.waitFor();
    const items = await warnings.getByRole('listitem').allTextContents();
    expect(items.length).toBeGreaterThan(0);
    expect(items.some((item) => item.includes(`AUTOMATIC1111 at ${a1111.url} answered HTTP 500`))).toBe(true);
    await page.getByRole('heading', { name: TITLE }).waitFor();
    await page.locator('#images').waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'Download as HTML' }).waitFor();
  });

  it('deletes a story only after confirmation', async () => {
    const story = await seedStory('The Kite That Would Not Land');
    const page = await openPage(`#/story/${story.id}`);
    await page.getByRole('heading', { name: story.title, level: 2 }).waitFor();

    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this story?' });
    await dialog.waitFor();
    await expect(dialog.textContent()).resolves.toContain(`“${story.title}” and its pictures will be deleted.`);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await expect(server.query(StoryDocument, { id: story.id }).then((data) => data.story?.id)).resolves.toBe(story.id);

    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText(`Deleted “${story.title}”.`).waitFor();
    await page.locator(`#history-list a[href="#/story/${story.id}"]`).waitFor({ state: 'detached' });
    await expect(page.locator('#story').isHidden()).resolves.toBe(true);
    await expect(server.query(StoryDocument, { id: story.id })).resolves.toEqual({ story: null });
  });

  it('shows only the story chosen last: leaving a story that is still loading aborts its request', async () => {
    const first = await seedStory('The Snail Who Took Her Time');
    const second = await seedStory('The Hare Who Did Not');
    const page = await openPage();
    await page.locator('#history-list .history-title').first().waitFor();

    // The first story's answer is held back until the second story is on screen.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const firstRequestHeld = new Promise<void>((resolve) => (held = resolve));
    const isFirst = (postData: string | null) => (postData ?? '').includes(first.id);
    await page.route('**/graphql', async (route) => {
      if (!isFirst(route.request().postData())) return route.continue();
      held();
      await released;
      // The page gave up on this request; answering it must change nothing.
      await route.continue().catch(() => undefined);
    });
    const firstFailed = page.waitForEvent('requestfailed', (request) => isFirst(request.postData()));

    await page.getByRole('link', { name: new RegExp(first.title) }).click();
    await firstRequestHeld;
    await page.getByRole('link', { name: new RegExp(second.title) }).click();
    await page.getByRole('heading', { name: second.title, level: 2 }).waitFor();
    expect((await firstFailed).failure()?.errorText).toBe('net::ERR_ABORTED');
    release();

    await expect(shownText(page)).resolves.toBe(second.storyText);
    await expect(page.getByRole('heading', { name: first.title, level: 2 }).count()).resolves.toBe(0);
    await expect(page.locator('#alert').isHidden()).resolves.toBe(true);
    await page.locator(`#history-list a[href="#/story/${second.id}"][aria-current="page"]`).waitFor();
    expect(page.url()).toContain(`#/story/${second.id}`);
  });

  it('closes the progress stream of a generation the reader leaves, and its later events do not touch the story now shown', async () => {
    const saved = await seedStory('The Patient Heron');
    ollama.options.tokenDelayMs.story = 40;
    const page = await openPage();
    const sockets: WebSocket[] = [];
    page.on('websocket', (socket) => sockets.push(socket));
    await recordStoryText(page);

    await page.getByLabel(PROMPT_LABEL).fill('a lighthouse keeper who befriends a storm');

    await page.getByLabel('Pages').selectOption('1');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.waitForFunction(
      () =>
        document.getElementById('progress-panel')?.dataset.status === 'GENERATING_STORY' &&
        (document.getElementById('story-text')?.textContent ?? '').length > 0,
    );
    const sessionId = /#\/session\/([0-9a-f-]+)$/.exec(page.url())![1];

    await page.getByRole('link', { name: new RegExp(saved.title) }).click();
    await page.getByRole('heading', { name: saved.title, level: 2 }).waitFor();
    expect(sockets.length).toBeGreaterThan(0);
    await Promise.all(sockets.map((socket) => (socket.isClosed() ? null : socket.waitForEvent('close'))));

    // The generation goes on without the page; once it is done, the page still shows only the saved story.
    await expect
      .poll(async () => (await server.query(GenerationSessionDocument, { id: sessionId })).generationSession?.status, {
        message: 'the generation the page left finishes on the server',
        timeout: 20_000,
      })
      .toBe('COMPLETED');
    await expect(shownText(page)).resolves.toBe(saved.storyText);
    await expect(page.locator('#progress-panel').isHidden()).resolves.toBe(true);
    const records = await storyTextRecords(page);
    const shownFrom = records.findIndex((record) => record.title === saved.title);
    expect(shownFrom).toBeGreaterThan(0);
    expect(records.slice(shownFrom)).toEqual(records.slice(shownFrom).map(() => ({ title: saved.title, text: saved.storyText })));
  });

  it('resumes the progress after the WebSocket drops, without losing or repeating story text', async () => {
    ollama.options.tokenDelayMs.story = 20;
    const page = await openPage();
    let connections = 0;
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      connections += 1;
      const upstream = ws.connectToServer();
      if (connections > 1) return;
      // The first connection is cut after a few story chunks.
      let events = 0;
      upstream.onMessage((message) => {
        ws.send(message);
        if (String(message).includes('"storyTextDelta":"') && ++events === 8) {
          void ws.close({ code: 1001, reason: 'test drops the connection' });
          void upstream.close();
        }
      });
    });
    await recordStoryText(page);

    await page.getByLabel(PROMPT_LABEL).fill('a lighthouse keeper who befriends a storm');

    await page.getByLabel('Pages').selectOption('1');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('heading', { name: 'Your story is ready' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#images img').length === 3);
    expect(connections).toBe(2);

    await page.waitForURL(/#\/story\/[0-9a-f-]+$/);
    const storyId = /#\/story\/([0-9a-f-]+)$/.exec(page.url())![1];
    const { story } = await server.query(StoryDocument, { id: storyId });
    const streamed = (await storyTextRecords(page)).filter((record) => record.title === 'Your story');
    for (const record of streamed) expect(story!.storyText.startsWith(record.text)).toBe(true);
    expect(streamed.at(-1)!.text).toBe(story!.storyText);
  });

  it('loads older stories as the end of the list scrolls into sight, or with Load more, and lists a running book with a link to follow it', async () => {
    for (let index = 0; index < 45; index += 1) {
      const at = new Date(Date.UTC(2020, 0, 1, 0, 0, index)).toISOString();
      await server.database.sql(`INSERT INTO stories (id, title, prompt, story_text, created_at) VALUES ($1, $2, 'old', 'An old story.', $3)`, [
        randomUUID(),
        `Old story ${index}`,
        at,
      ]);
    }
    const expected = (await server.database.sql<{ id: string }>(`SELECT id FROM stories WHERE story_text <> '' ORDER BY created_at DESC, id DESC`)).map(
      (row) => `#/story/${row.id}`,
    );
    const shownLinks = (page: Page) => page.locator('#history-list a').evaluateAll((links) => links.map((link: any) => link.getAttribute('href')));

    const page = await openPage();
    await page.waitForFunction(() => document.querySelectorAll('#history-list li').length === 20);
    while ((await page.locator('#history-list li').count()) < expected.length) {
      const before = await page.locator('#history-list li').count();
      await page.locator('#history-more').scrollIntoViewIfNeeded();
      await page.waitForFunction((count: number) => document.querySelectorAll('#history-list li').length > count, before);
    }
    expect(await shownLinks(page)).toEqual(expected);
    await expect(page.locator('#history-more').isHidden()).resolves.toBe(true);
    await expect(page.locator('#history-count').textContent()).resolves.toBe(`Showing ${expected.length} of ${expected.length}`);

    // Without IntersectionObserver the button does it.
    const fallback = await openPage();
    await fallback.addInitScript(() => {
      delete window.IntersectionObserver;
    });
    await fallback.reload();
    await fallback.waitForFunction(() => document.querySelectorAll('#history-list li').length === 20);
    await fallback.getByRole('button', { name: 'Load more' }).click();
    await fallback.waitForFunction(() => document.querySelectorAll('#history-list li').length === 40);
    expect(await shownLinks(fallback)).toEqual(expected.slice(0, 40));

    a1111.options.latencyMs = 10_000;
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a book still being painted' } });
    try {
      const running = await openPage();
      const link = running.locator(`#history-running a[href="#/session/${startGeneration.id}"]`);
      await link.waitFor();
      await expect(link.textContent()).resolves.toContain('a book still being painted');
      await link.click();
      await running.waitForFunction(() => document.getElementById('stage')?.textContent?.length > 0);
      expect(running.url()).toContain(`#/session/${startGeneration.id}`);
      expect(pageErrors).toEqual([]);
    } finally {
      await server.query(CancelGenerationDocument, { id: startGeneration.id });
    }
  });
});
