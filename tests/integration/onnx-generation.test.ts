import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, onTestFinished } from 'vitest';
import {
  CancelGenerationDocument,
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  StoriesDocument,
  StoryDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { DIAGNOSTICS_CHANNELS, type DiffusionJobReport, type DiffusionStepEvent } from '../../packages/onnx-diffusion/src/index.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import { test } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';
import { buildTinySdModel, type TinyModel, type TinyModelOptions } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';

/**
 * IMAGE_BACKEND=onnx end to end, on tiny random-weight models built at test time:
 * real ONNX Runtime sessions in the worker thread, real PNGs, the real pipeline.
 */
type Progress = GenerationProgressSubscription['generationProgress'];

/** The clock the worker stamps its steps with (DiffusionJobReport.stepWindows). */
const wallClock = () => performance.timeOrigin + performance.now();

/** A tiny model built for the file and removed after it. */
async function tinyModel(options: TinyModelOptions, onCleanup: (cleanup: () => Promise<void>) => void): Promise<TinyModel> {
  const model = await buildTinySdModel(options);
  onCleanup(() => model.remove());
  return model;
}

// Vitest reads a fixture's dependencies from its first parameter's pattern; these have none.
const it = test
  // biome-ignore lint/correctness/noEmptyPattern: see above
  .extend('fast', { scope: 'file' }, ({}, { onCleanup }) => tinyModel({ timestepType: 'int64' }, onCleanup))
  /** Heavier UNets (run at 256×256 and 512×512): a step long enough to cancel in, and one long enough to answer queries during. */
  // biome-ignore lint/correctness/noEmptyPattern: see above
  .extend('slow', { scope: 'file' }, ({}, { onCleanup }) => tinyModel({ unetChannels: 48, unetExtraLayers: 4, timestepType: 'float32' }, onCleanup))
  // biome-ignore lint/correctness/noEmptyPattern: see above
  .extend('heavy', { scope: 'file' }, ({}, { onCleanup }) => tinyModel({ unetChannels: 96, unetExtraLayers: 6 }, onCleanup));

it.override('stack', { env: { IMAGE_BACKEND: 'onnx', ORT_EXECUTION_PROVIDERS: 'cuda,cpu' } });

afterAll(async () => {
  await OnnxRuntimeHost.releaseAll();
});

async function generate(target: TestServer, seed?: number): Promise<Progress[]> {
  const { startGeneration } = await target.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', seed } });
  const events = await target.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  return events.map((event) => event.generationProgress);
}

async function imageBytes(target: TestServer, storyId: string): Promise<Record<string, Buffer>> {
  const { story } = await target.query(StoryDocument, { id: storyId });
  const entries = await Promise.all(story!.images.map(async (image) => [image.imageType, Buffer.from(await (await fetch(image.url)).arrayBuffer())] as const));
  return Object.fromEntries(entries);
}

/** The next message on a diagnostics channel that `matches`; unsubscribes once it has it. */
function nextMessage<T>(channel: string, matches: (message: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const listener = (message: unknown) => {
      if (!matches(message as T)) return;
      unsubscribe(channel, listener);
      resolve(message as T);
    };
    subscribe(channel, listener);
  });
}

function nextJob(modelDir: string): Promise<DiffusionJobReport> {
  return nextMessage<DiffusionJobReport>(DIAGNOSTICS_CHANNELS.job, (report) => report.modelDir === path.resolve(modelDir));
}

describe('IMAGE_BACKEND=onnx on a tiny model', () => {
  it('paints the character and background in one batch and composites them: three PNGs of the configured size', async ({ startServer, fast }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: fast.dir, NUM_INFERENCE_STEPS: '3', GUIDANCE_SCALE: '7.5' } });
    const job = nextJob(fast.dir);
    const events = await generate(target, 42);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, warnings: [] });

    const report = await job;
    expect(report).toMatchObject({ outcome: 'completed', stepsDone: 3, steps: 3, guidanceScale: 7.5 });

    // Progress moves per denoising step; painting runs while the page is written, so these are events about no page and with no text.
    const painting = events.filter((event) => event.pageIndex === null && !event.storyTextDelta && event.status !== 'COMPLETED' && event.storyId);
    const percents = [...new Set(painting.map((event) => event.progressPercentage))];
    expect(percents.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...percents)).toBeLessThan(100);

    const { story } = await target.query(StoryDocument, { id: last.storyId! });
    expect(story!.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
    expect(story!.characterImage).toMatchObject({ width: 64, height: 64, seed: 42 });
    expect(story!.backgroundImage).toMatchObject({ width: 64, height: 64, seed: 43 });
    for (const [, png] of Object.entries(await imageBytes(target, last.storyId!))) {
      const metadata = await sharp(png).metadata();
      expect({ format: metadata.format, width: metadata.width, height: metadata.height }).toEqual({ format: 'png', width: 64, height: 64 });
      // Random weights still make a picture, not a flat field.
      const { channels } = await sharp(png).stats();
      expect(channels.some((channel) => channel.stdev > 1)).toBe(true);
    }
  });

  it('cuts a picture prompt past 75 CLIP tokens at a word, records what the model read, and warns', async ({ startServer, fast }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: fast.dir, NUM_INFERENCE_STEPS: '1' } });
    // The style comes last in every prompt. Words the tiny vocabulary lacks cost a token a letter, so these 97
    // characters alone are past the 75 tokens CLIP reads.
    const style = `${'zzzz '.repeat(18)}ENDMARK`;
    const { startGeneration } = await target.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', style, seed: 3 } });
    const events = (await target.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);
    const last = events.at(-1)!;
    expect(last.status).toBe('COMPLETED');
    expect(last.warnings.some((warning) => /CLIP tokens; the model reads 75/.test(warning))).toBe(true);
    const { story } = await target.query(StoryDocument, { id: last.storyId! });
    const character = story!.images.find((image) => image.imageType === 'CHARACTER')!;
    // The description leads and survives; the end of the style was cut, and promptUsed says so.
    expect(character.promptUsed).toContain(story!.characterDescription.split(',')[0]);
    expect(character.promptUsed).not.toContain('ENDMARK');
  });

  it('gives byte-identical PNGs for the same seed, prompt, size and model, and different ones for another seed', async ({ startServer, fast }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: fast.dir, NUM_INFERENCE_STEPS: '2' } });
    const first = await imageBytes(target, (await generate(target, 7)).at(-1)!.storyId!);
    const again = await imageBytes(target, (await generate(target, 7)).at(-1)!.storyId!);
    const other = await imageBytes(target, (await generate(target, 8)).at(-1)!.storyId!);
    expect(again.CHARACTER.equals(first.CHARACTER)).toBe(true);
    expect(again.BACKGROUND.equals(first.BACKGROUND)).toBe(true);
    expect(again.COMBINED.equals(first.COMBINED)).toBe(true);
    expect(other.CHARACTER.equals(first.CHARACTER)).toBe(false);
    // Seed 7's background is painted with seed 8, which is seed 8's character seed: the same noise, another prompt.
    expect(other.BACKGROUND.equals(first.BACKGROUND)).toBe(false);
  });

  it('makes a 6-page book with one batched run: 3 UNet steps paint the character and all six scenes', async ({ startServer, fast }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: fast.dir, NUM_INFERENCE_STEPS: '3' } });
    const steps: DiffusionStepEvent[] = [];
    const jobs: DiffusionJobReport[] = [];
    const onStep = (message: unknown) => (message as DiffusionStepEvent).modelDir === path.resolve(fast.dir) && steps.push(message as DiffusionStepEvent);
    const onJob = (message: unknown) => (message as DiffusionJobReport).modelDir === path.resolve(fast.dir) && jobs.push(message as DiffusionJobReport);
    subscribe(DIAGNOSTICS_CHANNELS.step, onStep);
    subscribe(DIAGNOSTICS_CHANNELS.job, onJob);
    try {
      const { startGeneration } = await target.query(StartGenerationDocument, {
        input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount: 6, seed: 1 },
      });
      const events = (await target.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);
      expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', warnings: [] });
      const { story } = await target.query(StoryDocument, { id: events.at(-1)!.storyId! });
      expect(story!.pages).toHaveLength(6);
      expect(story!.pages.every((page) => page.combinedImage?.width === 64)).toBe(true);
      expect(story!.images.filter((image) => image.imageType === 'CHARACTER')).toHaveLength(1);
      // One call for all seven pictures: the UNet runs once per denoising step, not once per picture and step.
      expect(jobs.map((job) => job.outcome)).toEqual(['completed']);
      expect(steps.map((step) => step.done)).toEqual([1, 2, 3]);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.step, onStep);
      unsubscribe(DIAGNOSTICS_CHANNELS.job, onJob);
    }
  });

  it('cancels between denoising steps: no step starts after the cancel, and the run stops after the step under way', async ({ startServer, slow }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: slow.dir, NUM_INFERENCE_STEPS: '60', IMAGE_WIDTH: '256', IMAGE_HEIGHT: '256' } });
    const { startGeneration } = await target.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const subscription = target.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    const job = nextJob(slow.dir);
    await nextMessage<DiffusionStepEvent>(DIAGNOSTICS_CHANNELS.step, ({ modelDir, done }) => modelDir === path.resolve(slow.dir) && done >= 3);
    const { cancelGeneration } = await target.query(CancelGenerationDocument, { id: startGeneration.id });
    expect(cancelGeneration.status).toBe('CANCELLED');

    const report = await job;
    expect(report.outcome).toBe('cancelled');
    expect(report.stepsDone).toBeLessThan(60);
    const cancelAt = report.cancelRequestedAt!;
    expect(report.stepWindows.every(([startedAt]) => startedAt < cancelAt)).toBe(true);
    // The step under way when the cancel arrived finishes; the next never starts, and the worker stops after it.
    expect(report.stepWindows.filter(([, endedAt]) => endedAt > cancelAt).length).toBeLessThanOrEqual(1);
    expect(report.stoppedAt!).toBeGreaterThanOrEqual(Math.max(cancelAt, ...report.stepWindows.map(([, endedAt]) => endedAt)));

    const events = (await subscription.done).map((event) => event.generationProgress);
    expect(events.at(-1)!.status).toBe('CANCELLED');
    const { generationSession } = await target.query(GenerationSessionDocument, { id: startGeneration.id });
    expect(generationSession!.status).toBe('CANCELLED');
    expect(generationSession!.story?.images ?? []).toHaveLength(0);
  });

  it('answers queries while a denoising step is under way (inference runs off the event loop)', async ({ startServer, heavy }) => {
    const target = await startServer({ env: { SD_MODEL_DIR: heavy.dir, NUM_INFERENCE_STEPS: '6', IMAGE_WIDTH: '512', IMAGE_HEIGHT: '512' } });
    await generate(target); // loads the model; the measured run below is inference only
    const job = nextJob(heavy.dir);
    const { startGeneration } = await target.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const subscription = target.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id });
    await nextMessage<DiffusionStepEvent>(DIAGNOSTICS_CHANNELS.step, ({ modelDir }) => modelDir === path.resolve(heavy.dir));

    // The test server runs in this process: had the UNet run on its event loop, no query could start and
    // finish while a step was under way. How long the loop waits is measured in bench/onnx.ts.
    const queries: [number, number][] = [];
    let painting = true;
    void job.then(() => (painting = false));
    while (painting) {
      const startedAt = wallClock();
      await target.query(StoriesDocument, { limit: 5, offset: 0 });
      queries.push([startedAt, wallClock()]);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const report = await job;
    await subscription.done;

    const answeredDuringAStep = queries.filter(([startedAt, endedAt]) =>
      report.stepWindows.some(([stepStartedAt, stepEndedAt]) => stepStartedAt <= startedAt && endedAt <= stepEndedAt),
    );
    expect(answeredDuringAStep.length, `${queries.length} queries, steps ${JSON.stringify(report.stepWindows)}`).toBeGreaterThan(0);
  });
});

describe('IMAGE_BACKEND=onnx without a usable model', () => {
  it('completes text-only with a warning naming the missing file when the model folder is broken', async ({ startServer }) => {
    const broken = await buildTinySdModel();
    onTestFinished(() => broken.remove());
    await fs.rm(path.join(broken.dir, 'unet', 'model.onnx'));
    const target = await startServer({ env: { SD_MODEL_DIR: broken.dir } });
    const last = (await generate(target)).at(-1)!;
    expect(last.status).toBe('COMPLETED');
    expect(last.warnings[0]).toContain('The character picture could not be painted, so the pages show their scenes without the character:');
    expect(last.warnings[1]).toContain('The background picture could not be painted:');
    expect(last.warnings[0]).toContain(`${path.join(broken.dir, 'unet', 'model.onnx')} is missing`);
    const { story } = await target.query(StoryDocument, { id: last.storyId! });
    expect(story!.storyText).toContain('Mara');
    expect(story!.images).toHaveLength(0);
  });

  it('names a model file ONNX Runtime cannot read', async ({ startServer }) => {
    const broken = await buildTinySdModel();
    onTestFinished(() => broken.remove());
    await fs.writeFile(path.join(broken.dir, 'vae_decoder', 'model.onnx'), 'not an onnx file');
    const target = await startServer({ env: { SD_MODEL_DIR: broken.dir } });
    const last = (await generate(target)).at(-1)!;
    expect(last.status).toBe('COMPLETED');
    expect(last.warnings[0]).toMatch(/vae_decoder\/model\.onnx could not be opened by ONNX Runtime/);
  });

  it('tells the user to run npm run models:pull when there is no model at all', async ({ startServer, fast }) => {
    const empty = path.join(fast.dir, 'nothing-here');
    const target = await startServer({ env: { SD_MODEL_DIR: empty } });
    const last = (await generate(target)).at(-1)!;
    expect(last.status).toBe('COMPLETED');
    expect(last.warnings[0]).toContain(`No Stable Diffusion model in ${empty}: run \`npm run models:pull\``);
  });
});
