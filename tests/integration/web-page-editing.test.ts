import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument, StoryDocument, type StoryFieldsFragment } from '../../src/client/generated/graphql.js';
import { startWebStack, type WebStack } from '../support/browser.js';
import { chromium, skipWithoutTool, toolAvailable } from '../support/environment.js';
import type { FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_REPLIES } from '../support/fake-ollama.js';
import type { TestServer } from '../support/test-server.js';

/**
 * Editing a book's pages on the web page, in Debian's Chromium against a real
 * server: Paint again (with the picture showing its progress), Edit text with
 * Save and Cancel, and Repaint to match.
 */

declare const document: any;

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-artifacts/web');

let stack: WebStack | undefined;
let browser: Browser;
let a1111: FakeAutomatic1111;
let server: TestServer;
let pageErrors: string[] = [];
const pages: Page[] = [];

beforeAll(async () => {
  if (!toolAvailable(chromium)) return;
  const [started] = await Promise.all([startWebStack('web-edit'), fs.mkdir(artifacts, { recursive: true })]);
  stack = started;
  ({ browser, a1111, server } = started);
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

beforeEach((context) => {
  skipWithoutTool(chromium, context);
  a1111.options.latencyMs = 0;
  pageErrors = [];
});

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.context().close()));
  expect(pageErrors).toEqual([]);
});

async function makeBook(pageCount: number): Promise<StoryFieldsFragment> {
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount } });
  const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  return storyOf(events.at(-1)!.generationProgress.storyId!);
}

async function storyOf(id: string): Promise<StoryFieldsFragment> {
  return (await server.query(StoryDocument, { id })).story!;
}

async function openStory(id: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${server.url}/#/story/${id}`);
  // Shown once Download and Delete are there (a book also has its reader then).
  await page.locator('#story-actions:not([hidden])').waitFor();
  return page;
}

const pictureOf = (page: Page) => page.locator('#reader .page-img').getAttribute('src');

describe('editing a book on the page', () => {
  it('Paint again shows the page’s progress on its picture, then the new picture; other pages keep theirs', async () => {
    const book = await makeBook(3);
    const page = await openStory(book.id);
    await page.getByRole('button', { name: 'Next →' }).click();
    expect(await pictureOf(page)).toBe(book.pages[1].combinedImage!.url);

    a1111.options.latencyMs = 1500;
    await page.getByRole('button', { name: 'Paint again' }).click();
    const progress = page.locator('#repaint-progress');
    await progress.waitFor();
    await expect(page.locator('#reader .page-picture').getAttribute('aria-busy')).resolves.toBe('true');
    await expect(page.getByRole('button', { name: 'Paint again' }).isDisabled()).resolves.toBe(true);
    await page.waitForFunction(() => (document.querySelector('#repaint-progress')?.textContent ?? '').includes('Painting the page again'));
    await page.screenshot({ path: path.join(artifacts, 'page-repainting.png') });
    await progress.waitFor({ state: 'detached', timeout: 20_000 });

    const after = await storyOf(book.id);
    expect(after.pages[1].combinedImage!.id).not.toBe(book.pages[1].combinedImage!.id);
    expect(await pictureOf(page)).toBe(after.pages[1].combinedImage!.url);
    await page.waitForFunction(() => {
      const img = document.querySelector('#reader .page-img');
      return img?.complete && img.naturalWidth > 0;
    });
    expect(after.pages[0].combinedImage!.id).toBe(book.pages[0].combinedImage!.id);
    expect(after.pages[2].combinedImage!.id).toBe(book.pages[2].combinedImage!.id);
    await expect(page.locator('#page-edit-error').isHidden()).resolves.toBe(true);
  });

  it('Edit text opens an inline editor; Save keeps the text and offers Repaint to match, which paints the page from its new text', async () => {
    const book = await makeBook(2);
    const page = await openStory(book.id);
    await page.getByRole('button', { name: 'Edit text' }).click();
    const editor = page.getByLabel('Text of page 1');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('page-text-input');
    await expect(editor.inputValue()).resolves.toBe(book.pages[0].text);
    await expect(page.locator('#edit-text').getAttribute('aria-expanded')).resolves.toBe('true');

    await editor.fill('Mara climbed to the lamp room.\n\nThe storm waited below.');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#page-saved').waitFor();
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('repaint-to-match');
    await expect(page.locator('#page-text p').allTextContents()).resolves.toEqual(['Mara climbed to the lamp room.', 'The storm waited below.']);
    expect((await storyOf(book.id)).pages[0].text).toBe('Mara climbed to the lamp room.\n\nThe storm waited below.');

    await page.getByRole('button', { name: 'Repaint to match' }).click();
    await page.locator('#repaint-progress').waitFor();
    await page.locator('#repaint-progress').waitFor({ state: 'detached', timeout: 20_000 });
    const after = await storyOf(book.id);
    expect(after.pages[0].sceneDescription).toBe(DEFAULT_REPLIES.background);
    expect(await pictureOf(page)).toBe(after.pages[0].combinedImage!.url);
    expect(after.pages[0].combinedImage!.id).not.toBe(book.pages[0].combinedImage!.id);
    await expect(page.locator('#page-saved').count()).resolves.toBe(0);
  });

  it('offers the same on a one-page story: its combined picture shows the progress, then the new one; its text can be edited', async () => {
    const book = await makeBook(1);
    const page = await openStory(book.id);
    await page.locator('#images .combined img').waitFor();
    a1111.options.latencyMs = 1000;
    await page.getByRole('button', { name: 'Paint again' }).click();
    await page.locator('#images .combined #repaint-progress').waitFor();
    await page.locator('#repaint-progress').waitFor({ state: 'detached', timeout: 20_000 });
    const after = await storyOf(book.id);
    expect(after.combinedImage!.id).not.toBe(book.combinedImage!.id);
    expect(after.characterImage!.id).toBe(book.characterImage!.id);
    await expect(page.locator('#images .combined img').getAttribute('src')).resolves.toBe(after.combinedImage!.url);

    await page.getByRole('button', { name: 'Edit text' }).click();
    await page.getByLabel('Text of page 1').fill('A short new story.');
    await page.keyboard.press('Control+Enter');
    await page.locator('#page-saved').waitFor();
    await expect(page.locator('#story-text p').allTextContents()).resolves.toEqual(['A short new story.']);
    expect((await storyOf(book.id)).storyText).toBe('A short new story.');
  });

  it('says why an empty text cannot be saved; Escape closes the editor and changes nothing', async () => {
    const book = await makeBook(2);
    const page = await openStory(book.id);
    await page.getByRole('button', { name: 'Edit text' }).click();
    await page.getByLabel('Text of page 1').fill('   ');
    await page.getByRole('button', { name: 'Save' }).click();
    // The server judges the text: its answer arrives after the click, so wait for it rather than count at once.
    await page.getByRole('alert').filter({ hasText: 'The page text is empty' }).waitFor();
    await expect(page.getByRole('alert').filter({ hasText: 'The page text is empty' }).count()).resolves.toBe(1);
    await expect(page.locator('#page-text-input').getAttribute('aria-invalid')).resolves.toBe('true');
    await page.keyboard.press('Escape');
    await page.locator('#page-editor').waitFor({ state: 'detached' });
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('edit-text');
    expect(await storyOf(book.id)).toEqual(book);
    await expect(page.locator('#page-text p').allTextContents()).resolves.toEqual(book.pages[0].text.split('\n').filter(Boolean));
  });
});
