import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIAGNOSTICS_CHANNELS,
  DiffusionErrorCode,
  DiffusionWorker,
  DiffusionWorkerError,
  JobOutcome,
  type DiffusionJobReport,
  type DiffusionLoadedEvent,
  type DiffusionRequest,
  type DiffusionStepEvent,
} from '../src/index.js';
import { buildTinySdModel, type TinyModel } from './support/tiny-sd-model.js';

/**
 * The library's public API end to end: DiffusionWorker starts worker-thread.ts
 * (from source here, through tsx inside the thread), speaks worker-protocol.ts
 * with it and reports on the diagnostics channels.
 */
const logLines: { level: string; message: string }[] = [];
const logger = {
  info: (_detail: Record<string, unknown>, message: string) => logLines.push({ level: 'info', message }),
  warn: (_detail: Record<string, unknown>, message: string) => logLines.push({ level: 'warn', message }),
};
const workers: DiffusionWorker[] = [];
let fast: TinyModel;
let slow: TinyModel;

beforeAll(async () => {
  fast = await buildTinySdModel();
  slow = await buildTinySdModel({ unetChannels: 48, unetExtraLayers: 4 });
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.terminate()));
  await fast.remove();
  await slow.remove();
});

function startWorker(modelDir: string): DiffusionWorker {
  const worker = new DiffusionWorker({ modelDir, providers: ['cpu'], logger });
  workers.push(worker);
  return worker;
}

/** Every message on `channel` until the returned stop() is called. */
function record<T>(channel: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const listener = (message: unknown) => messages.push(message as T);
  subscribe(channel, listener);
  return { messages, stop: () => unsubscribe(channel, listener) };
}

const request = (seed: number, size: { width: number; height: number } = { width: 64, height: 48 }): DiffusionRequest => ({
  prompt: 'a lighthouse keeper',
  negativePrompt: 'blurry',
  seed,
  ...size,
});

describe('DiffusionWorker', () => {
  it('loads the model in its thread, paints a batch, and reports the load, each step and the job on the diagnostics channels', async () => {
    const loaded = record<DiffusionLoadedEvent>(DIAGNOSTICS_CHANNELS.loaded);
    const steps = record<DiffusionStepEvent>(DIAGNOSTICS_CHANNELS.step);
    const jobs = record<DiffusionJobReport>(DIAGNOSTICS_CHANNELS.job);
    try {
      const worker = startWorker(fast.dir);
      const info = await worker.load();
      expect(info).toMatchObject({ dir: path.resolve(fast.dir), providers: { textEncoder: 'cpu', unet: 'cpu', vaeDecoder: 'cpu' }, precision: 'fp32' });
      expect(worker.info).toEqual(info);
      expect(logLines).toContainEqual({ level: 'info', message: 'Stable Diffusion loaded in-process on cpu' });

      const seen: number[] = [];
      const output = await worker.generate([request(1), request(2)], {
        steps: 2,
        guidanceScale: 7.5,
        signal: new AbortController().signal,
        onStep: (done) => seen.push(done),
      });
      expect(output.images.map((image) => [image.width, image.height, image.rgb.length])).toEqual([
        [64, 48, 64 * 48 * 3],
        [64, 48, 64 * 48 * 3],
      ]);
      expect(output).toMatchObject({ steps: 2, guidanceScale: 7.5 });
      expect(seen).toEqual([1, 2]);

      const mine = <T extends { modelDir: string }>(messages: T[]) => messages.filter((message) => message.modelDir === path.resolve(fast.dir));
      expect(mine(loaded.messages)).toEqual([{ modelDir: path.resolve(fast.dir), info }]);
      expect(mine(steps.messages).map(({ done, total }) => [done, total])).toEqual([
        [1, 2],
        [2, 2],
      ]);
      expect(mine(jobs.messages)).toHaveLength(1);
      expect(mine(jobs.messages)[0]).toMatchObject({ outcome: JobOutcome.Completed, stepsDone: 2, totalSteps: 2, steps: 2, guidanceScale: 7.5 });
      expect(mine(jobs.messages)[0].stepWindows).toHaveLength(2);
    } finally {
      loaded.stop();
      steps.stop();
      jobs.stop();
    }
  });

  it('turns a size the export cannot make into BAD_REQUEST, and runs one generation at a time', async () => {
    const worker = startWorker(fast.dir);
    await worker.load();
    const signal = new AbortController().signal;
    const odd = worker.generate([request(1, { width: 60, height: 48 })], { steps: 1, signal });
    await expect(odd).rejects.toBeInstanceOf(DiffusionWorkerError);
    await expect(odd).rejects.toMatchObject({ code: DiffusionErrorCode.BadRequest, message: 'image size 60×48 is not a multiple of 8' });

    const first = worker.generate([request(1)], { steps: 1, signal });
    await expect(worker.generate([request(2)], { steps: 1, signal })).rejects.toThrow('one generation at a time');
    expect((await first).images).toHaveLength(1);
  });

  it('rejects with the signal’s reason when aborted, stopping before the next step, and reports where it stopped', async () => {
    const worker = startWorker(slow.dir);
    await worker.load();
    const controller = new AbortController();
    const jobs = record<DiffusionJobReport>(DIAGNOSTICS_CHANNELS.job);
    try {
      const reason = new Error('the user cancelled');
      const run = worker.generate([request(1, { width: 128, height: 128 })], {
        steps: 40,
        signal: controller.signal,
        onStep: (done) => {
          if (done === 2) controller.abort(reason);
        },
      });
      await expect(run).rejects.toBe(reason);
      const report = jobs.messages.find((message) => message.modelDir === path.resolve(slow.dir))!;
      expect(report).toMatchObject({ outcome: JobOutcome.Cancelled, totalSteps: 40 });
      expect(report.stepsDone).toBeGreaterThanOrEqual(2);
      expect(report.stepsDone).toBeLessThan(40);
      expect(report.stepWindows.every(([startedAt]) => startedAt < report.cancelRequestedAt!)).toBe(true);
      expect(report.stoppedAt).toBeGreaterThanOrEqual(report.cancelRequestedAt!);
    } finally {
      jobs.stop();
    }
    // The worker is idle again and takes the next job.
    const next = await worker.generate([request(3)], { steps: 1, signal: new AbortController().signal });
    expect(next.images).toHaveLength(1);
  });

  it('names the file of an unusable model (MODEL_UNUSABLE) and tries again at the next load', async () => {
    const broken = await buildTinySdModel();
    try {
      const unet = path.join(broken.dir, 'unet', 'model.onnx');
      await fs.rename(unet, `${unet}.away`);
      const worker = startWorker(broken.dir);
      const failed = worker.load();
      await expect(failed).rejects.toMatchObject({ code: DiffusionErrorCode.ModelUnusable });
      await expect(failed).rejects.toThrow(`The Stable Diffusion model in ${path.resolve(broken.dir)} cannot be used: ${unet} is missing`);
      expect(worker.info).toBeNull();

      await fs.rename(`${unet}.away`, unet);
      expect((await worker.load()).dir).toBe(path.resolve(broken.dir));
    } finally {
      await broken.remove();
    }
  });
});
