import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebPage, launchChromium } from '../support/browser.js';
import { chromium, skipWithoutTool, toolAvailable } from '../support/environment.js';
import { hashApiKey } from '../../src/services/auth/api-keys.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** The page against a server with AUTH_MODE=api-key: it asks for a key, keeps it, and its pictures load. */

declare const document: { querySelectorAll(selector: string): { complete: boolean; naturalWidth: number }[] };

const KEY = 'sa_web-test-key-0123456789abcdefghijklmnopqrstu';

let webDir: string;
let browser: Browser;
let ollama: FakeOllama;
let a1111: FakeAutomatic1111;
let server: TestServer;

beforeAll(async () => {
  // Without Chromium the test reports a skip saying how to install it; CI=true fails here instead.
  if (!toolAvailable(chromium)) return;
  webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-web-key-'));
  const [launched] = await Promise.all([launchChromium(), buildWebPage(webDir)]);
  browser = launched;
  ollama = await startFakeOllama();
  a1111 = await startFakeAutomatic1111();
  server = await startTestServer({
    env: { AUTH_MODE: 'api-key', WEB_DIR: webDir, OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '64', IMAGE_HEIGHT: '64' },
  });
  await server.database.sql('INSERT INTO api_keys (id, owner_id, key_hash) VALUES ($1, $2, $3)', [randomUUID(), 'dana', hashApiKey(KEY)]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await ollama?.close();
  await a1111?.close();
  if (webDir) await fs.rm(webDir, { recursive: true, force: true });
});

describe('the page with AUTH_MODE=api-key', () => {
  it('asks for a key, keeps it in the browser, and makes a story with signed pictures', async (context) => {
    skipWithoutTool(chromium, context);
    const browserContext = await browser.newContext();
    const page = await browserContext.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server.url);

    await page.getByRole('dialog', { name: 'This server needs an API key' }).waitFor();
    await page.getByLabel('API key', { exact: true }).fill(KEY);
    await page.getByRole('button', { name: 'Save key' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });

    await page.getByLabel('What is the story about?').fill('a lighthouse keeper who befriends a storm');
    // One page: its three pictures (character, setting, combined) are what the story view shows.
    await page.getByLabel('Pages').selectOption('1');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.locator('#progress-panel[data-status="COMPLETED"]').waitFor();
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('#images img')].length === 3 &&
        [...document.querySelectorAll('#images img')].every((img) => img.complete && img.naturalWidth > 0),
    );

    // A reload keeps the key: no dialog, the story list loads.
    await page.reload();
    await page.locator('#history-list li').first().waitFor();
    expect(await page.getByRole('dialog').count()).toBe(0);
    expect(errors).toEqual([]);
    await browserContext.close();
  });
});
