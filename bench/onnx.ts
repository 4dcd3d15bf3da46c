/**
 * In-process Stable Diffusion (IMAGE_BACKEND=onnx) on a tiny random-weight model
 * built at run time (packages/onnx-diffusion/tests/support/tiny-sd-model.ts), at 512×512 pictures
 * (64×64 latents), two pictures per batch with classifier-free guidance, so each
 * UNet call has 4 rows as with a real model. Measures:
 *   - per denoising step: the UNet run vs everything else (input packing,
 *     guidance, scheduler arithmetic), in ms;
 *   - the main thread's event-loop delay (p50/p99/max) during a generation, with
 *     the model in the worker thread as the server runs it, and, for contrast,
 *     with the same UNet run on the main thread;
 *   - how long a cancelled generation takes to stop (cancel flag set → worker stopped),
 *     against the length of a denoising step: the step under way finishes, no other starts.
 *
 *   npm run bench:onnx                                   # CPU
 *   ORT_EXECUTION_PROVIDERS=cuda npm run bench:onnx      # GPU; BENCH_REQUIRE_PROVIDER=1 fails on fallback
 *   BENCH_UNET_CHANNELS=64 BENCH_UNET_LAYERS=4 BENCH_STEPS=20 BENCH_RUNS=5 npm run bench:onnx
 *   (defaults: 48 channels, 2 extra conv layers, 10 steps, 5 runs, 512×512; BENCH_SIZE changes the size)
 *
 * The share of "everything else" depends on how long the tiny UNet takes; the ms figure is the
 * one that carries over to real models, whose UNet steps are 10²–10⁴× longer.
 *
 * Results go to stdout and into bench/RESULTS.md between the markers of the provider used
 * (BENCH_WRITE=0 leaves RESULTS.md alone; BENCH_OUT=file.md also writes the block there).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fs from 'node:fs/promises';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { pino } from 'pino';
import { DIAGNOSTICS_CHANNELS, parseProviderList, type DiffusionJobReport } from '../packages/onnx-diffusion/src/index.js';
import { OnnxImageGenerator, OnnxRuntimeHost } from '../src/adapters/images/onnx-image-generator.js';
import type { ImageRequest } from '../src/ports/image-generator.js';
import { buildTinySdModel } from '../packages/onnx-diffusion/tests/support/tiny-sd-model.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const STEPS = Number(process.env.BENCH_STEPS ?? 10);
const SIZE = Number(process.env.BENCH_SIZE ?? 512);
const CHANNELS = Number(process.env.BENCH_UNET_CHANNELS ?? 48);
const LAYERS = Number(process.env.BENCH_UNET_LAYERS ?? 2);
const GUIDANCE = 7.5;
const providers = parseProviderList(process.env.ORT_EXECUTION_PROVIDERS ?? 'cpu');

const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const model = await buildTinySdModel({ unetChannels: CHANNELS, unetExtraLayers: LAYERS });
const generator = new OnnxImageGenerator({ modelDir: model.dir, providers, steps: STEPS, guidanceScale: GUIDANCE }, logger);
const requests: ImageRequest[] = [
  { prompt: 'a lighthouse keeper in a yellow raincoat', negativePrompt: 'blurry, lowres', seed: 1, width: SIZE, height: SIZE },
  { prompt: 'a lighthouse on a rocky point at dusk', negativePrompt: 'blurry, lowres', seed: 2, width: SIZE, height: SIZE },
];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (value: number, digits = 2) => `${value.toFixed(digits)} ms`;

function nextJob(): Promise<DiffusionJobReport> {
  return new Promise((resolve) => {
    const listener = (report: unknown) => {
      unsubscribe(DIAGNOSTICS_CHANNELS.job, listener);
      resolve(report as DiffusionJobReport);
    };
    subscribe(DIAGNOSTICS_CHANNELS.job, listener);
  });
}

async function generateOnce(): Promise<{ report: DiffusionJobReport; loop: IntervalHistogram; wallMs: number; pngs: Buffer[] }> {
  const job = nextJob();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  // A timer the event loop must keep serving, as a server's sockets would be.
  const ticker = setInterval(() => undefined, 5);
  loop.enable();
  const startedAt = performance.now();
  const pictures = await generator.generate(requests, { signal: new AbortController().signal });
  const wallMs = performance.now() - startedAt;
  loop.disable();
  clearInterval(ticker);
  return { report: await job, loop, wallMs, pngs: pictures.map((picture) => picture.png) };
}

// Load first: a provider that fell back is known before any (possibly very slow) run.
const info = await OnnxRuntimeHost.for({ modelDir: model.dir, providers }, logger).load();
if (process.env.BENCH_REQUIRE_PROVIDER === '1' && info.providers.unet !== providers[0]) {
  process.stderr.write(`asked for ${providers[0]} but the UNet runs on ${info.providers.unet}\n`);
  await OnnxRuntimeHost.releaseAll();
  await model.remove();
  process.exit(3);
}
await generateOnce(); // warm-up: first-run allocations, JIT

const runs: Awaited<ReturnType<typeof generateOnce>>[] = [];
for (let run = 0; run < RUNS; run++) runs.push(await generateOnce());

/** Cancels a generation once its first step is done; the report says when the cancel came and when the worker stopped. */
async function cancelOnce(): Promise<DiffusionJobReport> {
  const job = nextJob();
  const controller = new AbortController();
  const onStep = () => controller.abort(new Error('bench cancels'));
  subscribe(DIAGNOSTICS_CHANNELS.step, onStep);
  try {
    await generator.generate(requests, { signal: controller.signal }).catch(() => undefined);
  } finally {
    unsubscribe(DIAGNOSTICS_CHANNELS.step, onStep);
  }
  return job;
}
const cancels: DiffusionJobReport[] = [];
for (let run = 0; run < RUNS; run++) cancels.push(await cancelOnce());
await OnnxRuntimeHost.releaseAll();

const steps = runs.flatMap((run) => run.report.timings!.steps);
const unet = median(steps.map((step) => step.unetMs));
const other = median(steps.map((step) => step.otherMs));
const otherMax = Math.max(...steps.map((step) => step.otherMs));
const share = (other / (unet + other)) * 100;
const textEncoder = median(runs.map((run) => run.report.timings!.textEncoderMs));
const vae = median(runs.map((run) => run.report.timings!.vaeMs));
const wall = median(runs.map((run) => run.wallMs));
const workerP50 = median(runs.map((run) => run.loop.percentile(50) / 1e6));
const workerP99 = median(runs.map((run) => run.loop.percentile(99) / 1e6));
const workerMax = Math.max(...runs.map((run) => run.loop.max / 1e6));
const cancelled = cancels.filter((report) => report.outcome === 'cancelled' && report.stoppedAt !== undefined);
const stopMs = cancelled.map((report) => report.stoppedAt! - report.cancelRequestedAt!);
const stepMs = median(cancelled.flatMap((report) => report.stepWindows.map(([startedAt, endedAt]) => endedAt - startedAt)));
const identical = runs.every((run) => run.pngs.every((png, index) => png.equals(runs[0].pngs[index])));

// Contrast: the same UNet, same inputs, run on the main thread as onnxruntime-node would by default.
const latent = SIZE / 8;
const session = await InferenceSession.create(`${model.dir}/unet/model.onnx`, { executionProviders: [info.providers.unet], graphOptimizationLevel: 'all' });
const rows = 4;
const feeds = {
  sample: new Tensor('float32', new Float32Array(rows * 4 * latent * latent).fill(0.1), [rows, 4, latent, latent]),
  timestep: new Tensor('int64', new BigInt64Array([999n]), [1]),
  encoder_hidden_states: new Tensor('float32', new Float32Array(rows * 77 * 32).fill(0.1), [rows, 77, 32]),
};
await session.run(feeds);
const blocking = monitorEventLoopDelay({ resolution: 1 });
const ticker = setInterval(() => undefined, 5);
blocking.enable();
for (let step = 0; step < STEPS; step++) await session.run(feeds);
blocking.disable();
clearInterval(ticker);
await session.release();
await model.remove();

const providerLabel = info.providers.unet;
const report = [
  `### In-process Stable Diffusion (ONNX Runtime, ${providerLabel}): tiny model, ${SIZE}×${SIZE} (median of ${RUNS}, after one warm-up)`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
    `onnxruntime-node 1.30, providers asked ${providers.join(',')}, used ${providerLabel}; date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Model: tiny random-weight UNet (${CHANNELS} channels, ${LAYERS + 2} 3×3 convolutions), two pictures per batch with guidance ${GUIDANCE} ` +
    `(UNet input [${rows}, 4, ${latent}, ${latent}]), ${STEPS} Euler steps. A real SD UNet step is 10²–10⁴× longer; the non-UNet part is the same work.`,
  '',
  '| per denoising step | median | share of the step |',
  '| --- | ---: | ---: |',
  `| UNet run (\`session.run\`, in the worker) | ${ms(unet)} | ${(100 - share).toFixed(1)} % |`,
  `| everything else (pack inputs, guidance, scheduler step, progress message) | ${ms(other, 3)} (max ${ms(otherMax, 3)}) | **${share.toFixed(2)} %** (goal ≤ 2 %) |`,
  '',
  `Text encoder ${ms(textEncoder)}, VAE decode ${ms(vae)}, whole call (both pictures, PNG-encoded) ${ms(wall, 0)}. ` +
    `Same seeds gave ${identical ? 'byte-identical' : '**different**'} PNGs in all ${RUNS} runs.`,
  '',
  '| main-thread event-loop delay during a generation | p50 | p99 | max |',
  '| --- | ---: | ---: | ---: |',
  `| model in the worker thread (as the server runs it) | ${ms(workerP50, 1)} | **${ms(workerP99, 1)}** | ${ms(workerMax, 1)} |`,
  `| same UNet run on the main thread (onnxruntime-node's own \`run\`, for contrast) | ${ms(blocking.percentile(50) / 1e6, 1)} | ${ms(blocking.percentile(99) / 1e6, 1)} | ${ms(blocking.max / 1e6, 1)} |`,
  '',
  cancelled.length > 0
    ? `Cancel (flag set after the first step → worker stopped), ${cancelled.length} of ${RUNS} runs: median ${ms(median(stopMs), 1)}, max ${ms(Math.max(...stopMs), 1)}; ` +
      `a denoising step takes ${ms(stepMs, 1)} (the step under way finishes, no other starts).`
    : `Cancel: none of ${RUNS} runs was still going when the cancel came (the generation finished first).`,
  '',
].join('\n');

process.stdout.write(`${report}\n`);
if (process.env.BENCH_OUT) await fs.appendFile(process.env.BENCH_OUT, `${report}\n`);
if (process.env.BENCH_WRITE !== '0') {
  const resultsFile = new URL('./RESULTS.md', import.meta.url);
  const begin = `<!-- onnx-${providerLabel}:begin -->`;
  const end = `<!-- onnx-${providerLabel}:end -->`;
  const existing = await fs.readFile(resultsFile, 'utf8').catch(() => '# Benchmark results\n\n');
  const block = `${begin}\n${report}${end}`;
  await fs.writeFile(
    resultsFile,
    existing.includes(begin) ? existing.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${existing.trimEnd()}\n\n${block}\n`,
  );
}
