/**
 * How long the page takes to show the first story text after Generate, against
 * the fake model servers: `npx tsx tests/e2e/first-text-bench.ts [runs]`.
 * Builds the page, starts a test server (needs TEST_POSTGRES_URL, like the
 * integration tests) and Debian's Chromium, then generates `runs` stories
 * (default 10) and prints each run's timeline and the median. Not a test:
 * nothing is asserted.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { startFakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startTestServer } from '../support/test-server.js';

// page.evaluate callbacks run in the browser; the root tsconfig has no DOM types.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;
declare const WebSocket: any;

const root = path.resolve(import.meta.dirname, '../..');
const runs = Number(process.argv[2] ?? 10);

interface Timeline {
  /** ms after the Generate click (the page's `story-agent:submit` mark). */
  startGenerationAnswered: number;
  webSocketOpen: number;
  firstDeltaReceived: number;
  firstTextShown: number;
}

const webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-bench-web-'));
await build({ configFile: path.join(root, 'web/vite.config.ts'), logLevel: 'warn', build: { outDir: webDir, emptyOutDir: true } });
const ollama = await startFakeOllama();
const a1111 = await startFakeAutomatic1111();
const server = await startTestServer({
  env: { WEB_DIR: webDir, OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'automatic1111', AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '256', IMAGE_HEIGHT: '192' },
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
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

try {
  const page = await browser.newPage();
  // Notes when the page's WebSocket opens and when the first story chunk arrives on it.
  await page.addInitScript(() => {
    const Native = WebSocket;
    window.benchTimes = {};
    window.WebSocket = class extends Native {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('open', () => (window.benchTimes.open ??= performance.now()));
        this.addEventListener('message', (event: { data: unknown }) => {
          if (String(event.data).includes('"storyTextDelta":"')) window.benchTimes.delta ??= performance.now();
        });
      }
    };
  });

  const timelines: Timeline[] = [];
  for (let run = 0; run < runs; run++) {
    await page.goto(`${server.url}/`);
    await page.getByLabel('What is the story about?').fill('a lighthouse keeper who befriends a storm');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('heading', { name: 'Your story is ready' }).waitFor();
    const timeline: Timeline = await page.evaluate(() => {
      const submit = performance.getEntriesByName('story-agent:submit')[0].startTime;
      const shown = performance.getEntriesByName('story-agent:first-text')[0].startTime;
      const answer = (performance.getEntriesByType('resource') as unknown as { name: string; startTime: number; responseEnd: number }[]).find(
        (entry) => entry.name.endsWith('/graphql') && entry.startTime >= submit,
      );
      return {
        startGenerationAnswered: (answer?.responseEnd ?? Number.NaN) - submit,
        webSocketOpen: window.benchTimes.open - submit,
        firstDeltaReceived: window.benchTimes.delta - submit,
        firstTextShown: shown - submit,
      };
    });
    timelines.push(timeline);
    const rounded = Object.fromEntries(Object.entries(timeline).map(([key, value]) => [key, Math.round(value)]));
    process.stdout.write(`run ${run + 1}: ${JSON.stringify(rounded)}\n`);
  }
  const shown = timelines.map((timeline) => timeline.firstTextShown).sort((a, b) => a - b);
  const median = shown[Math.floor(shown.length / 2)];
  process.stdout.write(
    `first story text after Generate: median ${Math.round(median)} ms, min ${Math.round(shown[0])} ms, max ${Math.round(shown.at(-1)!)} ms (${runs} runs; run 1 is a cold server)\n`,
  );
} finally {
  await browser.close();
  await server.stop();
  await ollama.close();
  await a1111.close();
  await fs.rm(webDir, { recursive: true, force: true });
}
