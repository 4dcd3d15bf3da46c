import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium as playwrightChromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { CHROMIUM_PATH } from './environment.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from './fake-automatic1111.js';
import { startFakeOllama, type FakeOllama } from './fake-ollama.js';
import { startTestServer, type TestServer } from './test-server.js';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * Debian's Chromium, headless, as this machine needs it: no sandbox (root), and none of the
 * background connections a closed network refuses.
 */
export function launchChromium(): Promise<Browser> {
  return playwrightChromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Builds the page from the current sources into `outDir` (dist/web is left alone). */
export async function buildWebPage(outDir: string): Promise<void> {
  await build({ configFile: path.join(root, 'web/vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}

/** What a browser suite drives: Chromium, and a server serving the current page with fake model servers behind it. */
export interface WebStack {
  browser: Browser;
  ollama: FakeOllama;
  a1111: FakeAutomatic1111;
  server: TestServer;
  /** Closes the browser, the server and the fakes, and removes the built page. */
  close(): Promise<void>;
}

/**
 * Launches Chromium, builds the page from the current sources into a folder of
 * its own (named after `name`), and starts a server with a fake Ollama and a fake
 * AUTOMATIC1111 painting 256×192 pictures.
 */
export async function startWebStack(name: string): Promise<WebStack> {
  const webDir = await fs.mkdtemp(path.join(os.tmpdir(), `story-agent-${name}-`));
  const [browser] = await Promise.all([launchChromium(), buildWebPage(webDir)]);
  const ollama = await startFakeOllama();
  const a1111 = await startFakeAutomatic1111();
  const server = await startTestServer({
    env: {
      WEB_DIR: webDir,
      OLLAMA_BASE_URL: ollama.url,
      IMAGE_BACKEND: 'automatic1111',
      AUTOMATIC1111_URL: a1111.url,
      IMAGE_WIDTH: '256',
      IMAGE_HEIGHT: '192',
    },
  });
  return {
    browser,
    ollama,
    a1111,
    server,
    async close() {
      await browser.close();
      await server.stop();
      await ollama.close();
      await a1111.close();
      await fs.rm(webDir, { recursive: true, force: true });
    },
  };
}
