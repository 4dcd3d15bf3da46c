/**
 * The embedded text backend (TEXT_BACKEND=embedded: node-llama-cpp in this
 * process) on this machine's CPU, with the tiny test model built at run time
 * (tests/support/tiny-gguf-model.ts: qwen2 architecture, 2 layers, width 64,
 * ~470-token byte-level BPE vocabulary), through the same path a generation
 * takes (EmbeddedChatBackend → ChatModelClient.complete, streamed). Measures,
 * per thread count (1 and the physical cores):
 *   - time to the first streamed piece (prompt evaluation included), ms;
 *   - generation speed, tokens/s from the first piece to the last;
 *   - the event loop's delay (p50/p99/max) while generating: inference runs on
 *     llama.cpp's threads, so the loop should stay free.
 *
 *   npm run bench:embedded
 *   BENCH_TOKENS=512 BENCH_RUNS=7 BENCH_LAYERS=8 BENCH_HIDDEN=256 npm run bench:embedded
 *   (defaults: 256 tokens a reply, 5 runs after one warm-up, the tiny test model's 2 layers × 64)
 *
 * These figures are llama.cpp's overhead-dominated speed on a model ~10⁴× smaller than a
 * real one; they show the pipeline's cost per token, not a real model's speed (README has
 * published figures for those). Results go to stdout and into bench/RESULTS.md between
 * the `embedded-cpu` markers (BENCH_WRITE=0 leaves RESULTS.md alone).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { pino } from 'pino';
import { modelServerCall } from '../src/adapters/http/model-server-fetch.js';
import { EmbeddedChatBackend } from '../src/adapters/text/embedded-chat-backend.js';
import { physicalCoreCount } from '../src/adapters/text/physical-cores.js';
import { ChatModelClient } from '../src/services/text/chat-model-client.js';
import { buildTinyGgufModel } from '../tests/support/tiny-gguf-model.js';

const TOKENS = Number(process.env.BENCH_TOKENS ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LAYERS = Number(process.env.BENCH_LAYERS ?? 2);
const HIDDEN = Number(process.env.BENCH_HIDDEN ?? 64);

const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const model = await buildTinyGgufModel({ layers: LAYERS, hiddenSize: HIDDEN, feedForward: HIDDEN * 2 });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const messages = [
  new SystemMessage('You are a children’s author. Write one page of a picture book: 40 to 120 words, warm and simple.'),
  new HumanMessage('Title: The Fox Who Counted the Stars\nPage 1 of 4: a small fox cannot sleep and starts counting the stars.'),
];

interface Row {
  threads: number;
  firstMs: number;
  tokensPerSecond: number;
  tokens: number;
  loop: { p50: number; p99: number; max: number };
}

/** The same measurement with nothing generating: on a shared machine the loop is late whenever the OS runs other work. */
async function idleLoopDelay(seconds: number) {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  loop.disable();
  return { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
}
const idle = await idleLoopDelay(5);

const rows: Row[] = [];
for (const threads of [...new Set([1, physicalCoreCount()])]) {
  const backend = new EmbeddedChatBackend(
    { modelFile: model.file, threads, contextSize: 4096, gpu: 'off', temperature: 0.8, requestTimeoutMs: 600_000, seed: 1 },
    logger,
  );
  const client = new ChatModelClient(backend, 60_000, modelServerCall);
  const reply = async () => {
    const started = performance.now();
    let first = 0;
    let last = 0;
    const completion = await client.complete({
      messages,
      activity: 'writing the story',
      maxTokens: TOKENS,
      signal: new AbortController().signal,
      onText: () => {
        last = performance.now();
        first ||= last;
      },
    });
    return { firstMs: first - started, tokensPerSecond: (completion.tokens - 1) / ((last - first) / 1000), tokens: completion.tokens };
  };
  await reply();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const runs = [];
  for (let run = 0; run < RUNS; run += 1) runs.push(await reply());
  loop.disable();
  await backend.close();
  rows.push({
    threads,
    firstMs: median(runs.map((run) => run.firstMs)),
    tokensPerSecond: median(runs.map((run) => run.tokensPerSecond)),
    tokens: median(runs.map((run) => run.tokens)),
    loop: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  });
}
await model.remove();

const loadAverage = os
  .loadavg()
  .map((load) => load.toFixed(1))
  .join(', ');
const report = [
  '## Embedded text model (`npm run bench:embedded`)',
  '',
  `### node-llama-cpp 3.21.1 on the CPU, tiny test model (median of ${RUNS}, after one warm-up)`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} logical CPUs (${physicalCoreCount()} physical cores), ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; shared with other work while measured; date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Model: tests/support/tiny-gguf-model.ts, qwen2 architecture, ${LAYERS} layers × ${HIDDEN}, F32, built at run time; ` +
    `${TOKENS} tokens a reply (the model seldom stops earlier), through EmbeddedChatBackend and ChatModelClient as a generation streams.`,
  '',
  '| threads | first piece (prompt included) | tokens/s (first piece → last) | tokens | event-loop delay p50 / p99 / max |',
  '| ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (row) =>
      `| ${row.threads} | ${row.firstMs.toFixed(0)} ms | **${row.tokensPerSecond.toFixed(0)}** | ${row.tokens} | ` +
      `${row.loop.p50.toFixed(1)} / ${row.loop.p99.toFixed(1)} / ${row.loop.max.toFixed(1)} ms |`,
  ),
  `| (control: nothing generating, 5 s) | | | | ${idle.p50.toFixed(1)} / ${idle.p99.toFixed(1)} / ${idle.max.toFixed(1)} ms |`,
  '',
  `Load average while measured: ${loadAverage} (1, 5, 15 min) on ${os.cpus().length} CPUs. With the load average above the CPU count, fewer threads than cores can be much faster: llama.cpp’s threads meet at every step of each token, so a thread the OS takes away stalls the others (EMBEDDED_THREADS sets the count).`,
  '',
  'The tiny model is ~10⁴× smaller than Qwen2.5 1.5B, so these speeds are llama.cpp’s and the pipeline’s fixed cost per token ' +
    '(sampling, detokenising, the callback into JavaScript), not a real model’s speed; README gives published figures for real models.',
  '',
].join('\n');

process.stdout.write(`${report}\n`);
if (process.env.BENCH_WRITE !== '0') {
  const resultsFile = new URL('./RESULTS.md', import.meta.url);
  const begin = '<!-- embedded-cpu:begin -->';
  const end = '<!-- embedded-cpu:end -->';
  const existing = await fs.readFile(resultsFile, 'utf8');
  const block = `${begin}\n${report}${end}`;
  await fs.writeFile(
    resultsFile,
    existing.includes(begin) ? existing.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${existing.trimEnd()}\n\n${block}\n`,
  );
}
