/**
 * A 6-page book against fake model servers with fixed latencies, painting
 * faster than writing (as SD-Turbo on a GPU beside a local LLM): wall time
 * beside (a) the original design's strictly sequential order (plan, every
 * page, every picture, every composite, one after another) and (b) the plan
 * plus the longer of {writing all pages, painting every picture}, which is
 * the best the dependencies allow. Goal: wall ≤ 1.1 × (b).
 *
 *   npm run bench:book            # embedded PGlite in a temp dir
 *   DATABASE_URL=postgres://… npm run bench:book
 *
 * Results go to stdout and into bench/RESULTS.md between the markers for the database used.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { SINGLE_USER } from '../src/services/auth/viewer.js';
import { GenerationStatus } from '../src/entities/enums.js';
import { startFakeAutomatic1111 } from '../tests/support/fake-automatic1111.js';
import { DEFAULT_REPLIES, startFakeOllama, tokenize } from '../tests/support/fake-ollama.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PAGES = 6;
/** A page of about 80 words. */
const PAGE_TEXT = DEFAULT_REPLIES.story.split('\n').slice(2).join('\n');
const LATENCY = {
  planMs: 600,
  pageTokenMs: 8,
  pictureMs: 350,
};

const ollama = await startFakeOllama({
  replies: { ...DEFAULT_REPLIES, story: PAGE_TEXT },
  tokenDelayMs: { planner: 0, story: LATENCY.pageTokenMs, character: 0, background: 0 },
  firstTokenDelayMs: { planner: LATENCY.planMs, story: 0, character: 0, background: 0 },
});
const a1111 = await startFakeAutomatic1111({ latencyMs: LATENCY.pictureMs });
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-bench-'));
const config = loadConfig({
  ...process.env,
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: '0',
  DATA_DIR: dataDir,
  OLLAMA_BASE_URL: ollama.url,
  IMAGE_BACKEND: 'automatic1111',
  AUTOMATIC1111_URL: a1111.url,
});
const app = await startApp(config, { logger: pino({ level: 'silent' }) });

interface Sample {
  wall: number;
  plan: number;
  writing: number;
  painting: number;
  /** From the later of the last word and the last picture to COMPLETED: the last composites and saves. */
  tail: number;
}

async function bookOnce(): Promise<Sample> {
  ollama.timings.length = 0;
  a1111.calls.length = 0;
  const startedAt = performance.now();
  const session = await app.generations.start({ prompt: 'a lighthouse keeper who befriends a storm', pageCount: PAGES }, SINGLE_USER);
  let completedAt = 0;
  for await (const event of await app.generations.follow(session.id, SINGLE_USER)) {
    if (event.status === GenerationStatus.COMPLETED) completedAt = performance.now();
    if (event.status === GenerationStatus.FAILED) throw new Error(event.errorMessage ?? 'failed');
  }
  const timings = (agent: string) => ollama.timings.filter((timing) => timing.agent === agent);
  const span = (timing: { startedAt: number; endedAt?: number }) => timing.endedAt! - timing.startedAt;
  const pages = timings('story');
  if (pages.length !== PAGES || a1111.calls.length !== PAGES + 1) throw new Error(`expected ${PAGES} pages and ${PAGES + 1} pictures`);
  const lastWord = Math.max(...pages.map((timing) => timing.endedAt!));
  const lastPicture = Math.max(...a1111.calls.map((call) => call.answeredAt!));
  return {
    wall: completedAt - startedAt,
    plan: span(timings('planner')[0]),
    writing: pages.reduce((sum, timing) => sum + span(timing), 0),
    painting: a1111.calls.reduce((sum, call) => sum + (call.answeredAt! - call.receivedAt), 0),
    tail: completedAt - Math.max(lastWord, lastPicture),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

await bookOnce(); // warm-up: JIT, connection pool, sharp
const samples: Sample[] = [];
for (let run = 0; run < RUNS; run++) samples.push(await bookOnce());
await app.stop();
await ollama.close();
await a1111.close();
await fs.rm(dataDir, { recursive: true, force: true });

const m = Object.fromEntries(Object.keys(samples[0]).map((key) => [key, median(samples.map((s) => s[key as keyof Sample]))])) as unknown as Sample;
const sequential = m.plan + m.writing + m.painting + m.tail;
const bound = m.plan + Math.max(m.writing, m.painting);
const ms = (value: number) => `${value.toFixed(0)} ms`;
const database = config.database.kind === 'postgres' ? 'PostgreSQL' : 'embedded PGlite';

const report = [
  `### Book: ${PAGES} pages, ${database} (median of ${RUNS}, after one warm-up)`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
    `database: ${database}; date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Fake latencies: plan ${LATENCY.planMs} ms; each page ${tokenize(PAGE_TEXT).length} tokens × ${LATENCY.pageTokenMs} ms; ` +
    `each picture ${LATENCY.pictureMs} ms on AUTOMATIC1111 (one at a time: ${PAGES + 1} pictures, the character and one scene per page).`,
  '',
  '| part | time |',
  '| --- | ---: |',
  `| plan | ${ms(m.plan)} |`,
  `| writing all pages (sum of the ${PAGES} streamed replies) | ${ms(m.writing)} |`,
  `| painting every picture (sum of the ${PAGES + 1} calls) | ${ms(m.painting)} |`,
  `| tail: last word or picture → COMPLETED (composites, saves) | ${ms(m.tail)} |`,
  `| **(a) strictly sequential** (plan + writing + painting + tail) | ${ms(sequential)} |`,
  `| **(b) plan + longer of writing and painting** | ${ms(bound)} |`,
  `| **wall time** (startGeneration → COMPLETED event) | ${ms(m.wall)} |`,
  '',
  `Wall time is ${(m.wall / bound).toFixed(3)} × (b) (goal ≤ 1.1) and ${((1 - m.wall / sequential) * 100).toFixed(0)} % below (a).`,
  '',
].join('\n');

process.stdout.write(`${report}\n`);
const resultsFile = new URL('./RESULTS.md', import.meta.url);
const begin = `<!-- book-${config.database.kind}:begin -->`;
const end = `<!-- book-${config.database.kind}:end -->`;
const existing = await fs.readFile(resultsFile, 'utf8').catch(() => '# Benchmark results\n\n');
const block = `${begin}\n${report}${end}`;
await fs.writeFile(
  resultsFile,
  existing.includes(begin) ? existing.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${existing.trimEnd()}\n\n${block}\n`,
);
