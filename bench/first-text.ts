/**
 * How long the page takes to show the first story text after Generate, against
 * the fake model servers: `npm run bench:first-text [runs]`.
 * Builds the page, starts a test server (needs TEST_POSTGRES_URL, like the
 * integration tests) and Debian's Chromium, then generates `runs` stories
 * (default 10) and prints each run's timeline and the median. Not a test:
 * nothing is asserted. Timed from outside the page (a script added before the
 * page's own notes the submit, the WebSocket and the first text in #story-text),
 * so the product carries no instrumentation.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildWebPage, launchChromium } from '../tests/support/browser.js';
import { startFakeAutomatic1111 } from '../tests/support/fake-automatic1111.js';
import { startFakeOllama } from '../tests/support/fake-ollama.js';
import { startTestServer } from '../tests/support/test-server.js';

// page.evaluate callbacks run in the browser; the root tsconfig has no DOM types.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;
declare const document: any;
declare const WebSocket: any;
declare const MutationObserver: any;

const runs = Number(process.argv[2] ?? 10);

interface Timeline {
  /** ms after the form was submitted (Generate). */
  startGenerationAnswered: number;
  webSocketOpen: number;
  firstDeltaReceived: number;
  firstTextShown: number;
}

const webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-bench-web-'));
await buildWebPage(webDir);
const ollama = await startFakeOllama();
const a1111 = await startFakeAutomatic1111();
const server = await startTestServer({
  env: { WEB_DIR: webDir, OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'automatic1111', AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '256', IMAGE_HEIGHT: '192' },
});
const browser = await launchChromium();

try {
  const page = await browser.newPage();
  // Notes when the form is submitted (a capturing listener runs before the page's own),
  // when the page's WebSocket opens, when the first story chunk arrives on it and
  // when the first story text is on screen.
  await page.addInitScript(() => {
    const Native = WebSocket;
    window.benchTimes = {};
    document.addEventListener('submit', () => (window.benchTimes = { submit: performance.now() }), true);
    new MutationObserver(() => {
      const times = window.benchTimes;
      if (times.submit !== undefined && times.shown === undefined && (document.getElementById('story-text')?.textContent ?? '').trim())
        times.shown = performance.now();
    }).observe(document, { childList: true, characterData: true, subtree: true });
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
      const { submit, shown } = window.benchTimes;
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
