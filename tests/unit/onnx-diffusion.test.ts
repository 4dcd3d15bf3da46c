import { InferenceSession } from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DiffusionCancelled, runDiffusion, type DiffusionJob, type DiffusionRequest } from '../../src/services/images/onnx/diffusion.js';
import { loadModel, type LoadedModel } from '../../src/services/images/onnx/model-loader.js';
import { buildTinySdModel, type TinyModel, type TinyModelOptions } from '../support/tiny-sd-model.js';

/** The denoising loop on tiny models, on this thread (the server runs it in the worker). */
const built: TinyModel[] = [];
const opened: LoadedModel[] = [];

async function tinyModel(options: TinyModelOptions = {}): Promise<LoadedModel> {
  const tiny = await buildTinySdModel(options);
  built.push(tiny);
  const model = await loadModel(tiny.dir, {
    providers: ['cpu'],
    factory: { create: (file, opts) => InferenceSession.create(file, opts) },
    onFallback: () => undefined,
  });
  opened.push(model);
  return model;
}

afterAll(async () => {
  await Promise.all(opened.flatMap((model) => Object.values(model.sessions).map((session) => session.release())));
  await Promise.all(built.map((model) => model.remove()));
});

const request = (seed: number, prompt = 'a photo of a cat'): DiffusionRequest => ({ prompt, negativePrompt: 'blurry', seed, width: 64, height: 48 });

function job(requests: DiffusionRequest[], overrides: Partial<DiffusionJob> = {}): DiffusionJob & { warnings: string[]; stepsSeen: number[] } {
  const warnings: string[] = [];
  const stepsSeen: number[] = [];
  return {
    requests,
    steps: 3,
    guidanceScale: 7.5,
    isCancelled: () => false,
    onStep: (done) => stepsSeen.push(done),
    warn: (message) => warnings.push(message),
    warnings,
    stepsSeen,
    ...overrides,
  };
}

describe('runDiffusion', () => {
  it.each([
    ['EulerDiscreteScheduler', 3],
    ['EulerAncestralDiscreteScheduler', 3],
    ['DDIMScheduler', 3],
    ['PNDMScheduler', 4],
    ['LCMScheduler', 3],
  ])('%s: makes one RGB picture per request of the asked size, reproducibly', async (className, unetRuns) => {
    const model = await tinyModel({ scheduler: { _class_name: className, clip_sample: false, skip_prk_steps: true } });
    const run = job([request(1), request(2)]);
    const first = await runDiffusion(model, run);
    expect(first.images.map((image) => [image.width, image.height, image.rgb.length])).toEqual([
      [64, 48, 64 * 48 * 3],
      [64, 48, 64 * 48 * 3],
    ]);
    expect(run.stepsSeen).toEqual(Array.from({ length: unetRuns }, (_, i) => i + 1));
    expect(first.timings.steps).toHaveLength(unetRuns);
    const again = await runDiffusion(model, job([request(1), request(2)]));
    expect(Buffer.from(again.images[0].rgb).equals(Buffer.from(first.images[0].rgb))).toBe(true);
    expect(Buffer.from(first.images[0].rgb).equals(Buffer.from(first.images[1].rgb))).toBe(false);
  });

  it('runs fp16 exports with a float timestep, and LCM UNets with a guidance embedding (no second row)', async () => {
    const half = await tinyModel({ precision: 'fp16', timestepType: 'float32' });
    expect((await runDiffusion(half, job([request(3)]))).images).toHaveLength(1);
    const lcm = await tinyModel({ timestepCondDim: 16, scheduler: { _class_name: 'LCMScheduler' } });
    const result = await runDiffusion(lcm, job([request(3), request(4)], { steps: 4, guidanceScale: 8 }));
    expect(result.images).toHaveLength(2);
  });

  it('depends on the prompt, the seed and the guidance', async () => {
    const model = await tinyModel();
    const picture = async (r: DiffusionRequest, guidanceScale = 7.5) => Buffer.from((await runDiffusion(model, job([r], { guidanceScale }))).images[0].rgb);
    const base = await picture(request(5));
    expect(base.equals(await picture(request(5, 'a storm at sea')))).toBe(false);
    expect(base.equals(await picture(request(6)))).toBe(false);
    expect(base.equals(await picture(request(5), 1))).toBe(false);
  });

  it('stops between steps when cancelled, saying how many steps were done', async () => {
    const model = await tinyModel();
    let steps = 0;
    const run = job([request(1)], { steps: 10, onStep: (done) => (steps = done), isCancelled: () => steps >= 2 });
    const error = await runDiffusion(model, run).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DiffusionCancelled);
    expect((error as DiffusionCancelled).stepsDone).toBe(2);
  });

  it('warns when a prompt is cut at 77 CLIP tokens, not for the negative prompt', async () => {
    const model = await tinyModel();
    const long = Array.from({ length: 100 }, () => 'cat').join(' ');
    const run = job([{ ...request(1), prompt: long, negativePrompt: long }]);
    await runDiffusion(model, run);
    expect(run.warnings).toHaveLength(1);
    expect(run.warnings[0]).toMatch(/prompt truncated to 77 CLIP tokens \(it had 102\)/);
  });

  it('refuses a size that is not a multiple of 8', async () => {
    const model = await tinyModel();
    await expect(runDiffusion(model, job([{ ...request(1), width: 60 }]))).rejects.toThrow(/not a multiple of 8/);
  });
});
