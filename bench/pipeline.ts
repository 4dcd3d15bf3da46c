/**
 * One generation against fake model servers with fixed latencies: wall time,
 * the time of each stage, their sum (what a strictly sequential pipeline like
 * the original design would take) and the critical path
 * (story + slower description + slower image + composite).
 *
 *   npm run bench:pipeline            # embedded PGlite in a temp dir
 *   DATABASE_URL=postgres://… npm run bench:pipeline
 *
 * Results go to stdout and into bench/RESULTS.md between the markers for the database used.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { GenerationStatus } from '../src/entities/enums.js';
import { startFakeAutomatic1111 } from '../tests/support/fake-automatic1111.js';
import { startFakeOllama, tokenize } from '../tests/support/fake-ollama.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LATENCY = {
  storyTokenMs: 4,
  characterDescriptionMs: 300,
  backgroundDescriptionMs: 500,
  characterImageMs: 900,
  backgroundImageMs: 600,
};

const ollama = await startFakeOllama({
  tokenDelayMs: { planner: 0, story: LATENCY.storyTokenMs, character: 0, background: 0 },
  firstTokenDelayMs: { planner: 0, story: 0, character: LATENCY.characterDescriptionMs, background: LATENCY.backgroundDescriptionMs },
});
const a1111 = await startFakeAutomatic1111({
  latencyFor: (call) => (/lighthouse on a rocky point/.test(call.prompt) ? LATENCY.backgroundImageMs : LATENCY.characterImageMs),
});
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
  story: number;
  characterDescription: number;
  backgroundDescription: number;
  characterImage: number;
  backgroundImage: number;
  composite: number;
}

async function generateOnce(): Promise<Sample> {
  ollama.timings.length = 0;
  a1111.calls.length = 0;
  const startedAt = performance.now();
  const session = await app.generations.start({ prompt: 'a lighthouse keeper who befriends a storm' });
  let completedAt = 0;
  for await (const event of await app.generations.follow(session.id)) {
    if (event.status === GenerationStatus.COMPLETED) completedAt = performance.now();
    if (event.status === GenerationStatus.FAILED) throw new Error(event.errorMessage ?? 'failed');
  }
  const took = (agent: string) => {
    const timing = ollama.timings.find((t) => t.agent === agent)!;
    return timing.endedAt! - timing.startedAt;
  };
  const image = (background: boolean) => {
    const call = a1111.calls.find((c) => /lighthouse on a rocky point/.test(c.prompt) === background)!;
    return call.answeredAt! - call.receivedAt;
  };
  const lastImageAt = Math.max(...a1111.calls.map((call) => call.answeredAt!));
  return {
    wall: completedAt - startedAt,
    story: took('story'),
    characterDescription: took('character'),
    backgroundDescription: took('background'),
    characterImage: image(false),
    backgroundImage: image(true),
    composite: completedAt - lastImageAt,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

await generateOnce(); // warm-up: JIT, connection pool, sharp
const samples: Sample[] = [];
for (let run = 0; run < RUNS; run++) samples.push(await generateOnce());
await app.stop();
await ollama.close();
await a1111.close();
await fs.rm(dataDir, { recursive: true, force: true });

const m = Object.fromEntries(Object.keys(samples[0]).map((key) => [key, median(samples.map((s) => s[key as keyof Sample]))])) as unknown as Sample;
const sum = m.story + m.characterDescription + m.backgroundDescription + m.characterImage + m.backgroundImage + m.composite;
const criticalPath = m.story + Math.max(m.characterDescription, m.backgroundDescription) + Math.max(m.characterImage, m.backgroundImage) + m.composite;
// What the dependencies allow at best: each branch paints as soon as its own description is ready.
const branchPath = m.story + Math.max(m.characterDescription + m.characterImage, m.backgroundDescription + m.backgroundImage) + m.composite;
const ms = (value: number) => `${value.toFixed(0)} ms`;
const percentOff = (value: number, reference: number) => `${Math.abs((value / reference - 1) * 100).toFixed(1)} % ${value >= reference ? 'above' : 'below'}`;
const storyTokens = tokenize((await import('../tests/support/fake-ollama.js')).DEFAULT_REPLIES.story).length;

const report = [
  `### Pipeline: one generation, ${config.database.kind === 'postgres' ? 'PostgreSQL' : 'embedded PGlite'} (median of ${RUNS}, after one warm-up)`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
    `database: ${config.database.kind === 'postgres' ? 'PostgreSQL' : 'embedded PGlite'}; date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Fake latencies: story ${storyTokens} tokens × ${LATENCY.storyTokenMs} ms, character description ${LATENCY.characterDescriptionMs} ms, ` +
    `background description ${LATENCY.backgroundDescriptionMs} ms, character image ${LATENCY.characterImageMs} ms, background image ${LATENCY.backgroundImageMs} ms.`,
  '',
  '| stage | time |',
  '| --- | ---: |',
  `| story (streamed) | ${ms(m.story)} |`,
  `| character description | ${ms(m.characterDescription)} |`,
  `| background description | ${ms(m.backgroundDescription)} |`,
  `| character image | ${ms(m.characterImage)} |`,
  `| background image | ${ms(m.backgroundImage)} |`,
  `| composite + save (last image → COMPLETED) | ${ms(m.composite)} |`,
  `| **sum of stages** (a strictly sequential pipeline) | ${ms(sum)} |`,
  `| **critical path** (story + slower description + slower image + composite) | ${ms(criticalPath)} |`,
  `| **branch path** (story + slower of description→image per branch + composite) | ${ms(branchPath)} |`,
  `| **wall time** (startGeneration → COMPLETED event) | ${ms(m.wall)} |`,
  '',
  `Wall time is ${percentOff(m.wall, criticalPath)} the critical path (goal: within 5 %), ${percentOff(m.wall, branchPath)} the branch path ` +
    `(the pipeline's own overhead: ${ms(m.wall - branchPath)}), and ${((1 - m.wall / sum) * 100).toFixed(0)} % below the sequential sum.`,
  '',
].join('\n');

process.stdout.write(`${report}\n`);
const resultsFile = new URL('./RESULTS.md', import.meta.url);
const begin = `<!-- pipeline-${config.database.kind}:begin -->`;
const end = `<!-- pipeline-${config.database.kind}:end -->`;
const existing = await fs.readFile(resultsFile, 'utf8').catch(() => '# Benchmark results\n\n');
const block = `${begin}\n${report}${end}`;
await fs.writeFile(
  resultsFile,
  existing.includes(begin) ? existing.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${existing.trimEnd()}\n\n${block}\n`,
);
