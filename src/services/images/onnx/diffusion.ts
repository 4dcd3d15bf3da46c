import { Tensor, type InferenceSession } from 'onnxruntime-node';
import type { LoadedModel, TensorSpec } from './model-loader.js';
import { createScheduler, guidanceScaleEmbedding } from './schedulers.js';
import { applyGuidance, BatchNoise, guidedLinearStep, packHalf, toHalfBits, toRgbBytes, unpackHalf, wallClock } from './tensor-math.js';

/**
 * One batch of pictures, text to pixels: tokenize, encode, denoise, decode.
 * Runs inside the ONNX worker thread. The batch is one UNet call per step when
 * the export allows it: rows [unconditional × B, conditional × B] with
 * classifier-free guidance, [conditional × B] without.
 */
export interface DiffusionRequest {
  prompt: string;
  negativePrompt: string;
  seed: number;
  width: number;
  height: number;
}

export interface StepTiming {
  /** session.run of the UNet, wall time. */
  unetMs: number;
  /** Everything else in the step: input packing, guidance, scheduler arithmetic. */
  otherMs: number;
}

export interface DiffusionTimings {
  textEncoderMs: number;
  steps: StepTiming[];
  vaeMs: number;
  totalMs: number;
}

export interface DiffusionJob {
  requests: DiffusionRequest[];
  steps: number;
  guidanceScale: number;
  isCancelled(): boolean;
  /** After each denoising step; startedAt/endedAt are wall-clock ms (comparable across threads). */
  onStep(done: number, total: number, startedAt: number, endedAt: number): void;
  warn(message: string, detail?: Record<string, unknown>): void;
}

export interface DiffusionResult {
  images: { rgb: Uint8Array; width: number; height: number }[];
  timings: DiffusionTimings;
  steps: number;
  guidanceScale: number;
}

export class DiffusionCancelled extends Error {
  override name = 'DiffusionCancelled';
  /** Wall-clock ms when the cancel was seen. */
  readonly stoppedAt = wallClock();
  constructor(readonly stepsDone: number) {
    super(`cancelled after ${stepsDone} denoising steps`);
  }
}

/** Errors a user can act on (a size the export cannot make, a batch it cannot take); the rest are ORT failures. */
export class DiffusionInputError extends Error {
  override name = 'DiffusionInputError';
}

type FloatData = Float32Array | Uint16Array;

export async function runDiffusion(model: LoadedModel, job: DiffusionJob): Promise<DiffusionResult> {
  const startedAt = performance.now();
  const { requests } = job;
  const batch = requests.length;
  const [width, height] = [requests[0].width, requests[0].height];
  if (requests.some((request) => request.width !== width || request.height !== height))
    throw new DiffusionInputError('all pictures of a batch must have one size');
  const io = model.io;
  const [latentH, latentW] = [height / 8, width / 8];
  if (!Number.isInteger(latentH) || !Number.isInteger(latentW)) throw new DiffusionInputError(`image size ${width}×${height} is not a multiple of 8`);
  if (io.unet.fixedLatentSize && (io.unet.fixedLatentSize[0] !== latentH || io.unet.fixedLatentSize[1] !== latentW)) {
    const [fh, fw] = io.unet.fixedLatentSize;
    throw new DiffusionInputError(`this export only makes ${fw * 8}×${fh * 8} pictures; set IMAGE_WIDTH=${fw * 8} IMAGE_HEIGHT=${fh * 8}`);
  }
  // Real UNets halve the latents three times; a size that is not a multiple of 64 fails inside the graph.
  const sizeHint =
    latentH % 8 || latentW % 8 ? ` (Stable Diffusion needs IMAGE_WIDTH and IMAGE_HEIGHT to be multiples of 64; they are ${width}×${height})` : '';
  const steps = job.steps;
  const embedsGuidance = io.unet.timestepCond !== null;
  const guided = job.guidanceScale > 1 && !embedsGuidance;
  const rowsPerImage = guided ? 2 : 1;
  const scheduler = createScheduler(model.schedulerConfig, steps);
  for (const note of scheduler.notes) job.warn(`scheduler: ${note}`);

  // --- text ---------------------------------------------------------------------------------
  const cancelCheck = (stepsDone: number) => {
    if (job.isCancelled()) throw new DiffusionCancelled(stepsDone);
  };
  cancelCheck(0);
  const texts = guided ? [...requests.map((r) => r.negativePrompt), ...requests.map((r) => r.prompt)] : requests.map((r) => r.prompt);
  const tokenRows = texts.map((text, index) => {
    const tokenized = model.tokenizer.encode(text);
    // Negative prompts are ours and long on purpose; only a user's prompt losing words is worth a warning.
    if (tokenized.truncated && (!guided || index >= batch)) {
      job.warn(`prompt truncated to ${model.tokenizer.maxLength} CLIP tokens (it had ${tokenized.tokenCount + 2}); words past that do not affect the picture`, {
        prompt: text.slice(0, 200),
      });
    }
    return tokenized.ids;
  });
  const textStartedAt = performance.now();
  const hidden = await encodeText(model, tokenRows);
  const textEncoderMs = performance.now() - textStartedAt;

  // --- denoise ------------------------------------------------------------------------------
  const channels = io.unet.latentChannels;
  const perImage = channels * latentH * latentW;
  const latents = new Float32Array(batch * perImage);
  const noise = new BatchNoise(
    requests.map((r) => r.seed),
    perImage,
  );
  noise.fill(latents);
  if (scheduler.initNoiseSigma !== 1) scaleInto(latents, latents, scheduler.initNoiseSigma);

  // One UNet call for the whole batch when the batch dimension is dynamic; else one per image.
  const groups = unetGroups(io.unet.fixedBatch, batch, rowsPerImage);
  const unetIsHalf = io.unet.sample.type === 'float16';
  const prepared = groups.map((group) => {
    const rows = group.count * rowsPerImage;
    const sampleData: FloatData = unetIsHalf ? new Uint16Array(rows * perImage) : new Float32Array(rows * perImage);
    const feeds: Record<string, Tensor> = {
      [io.unet.sample.name]: new Tensor(io.unet.sample.type, sampleData, [rows, channels, latentH, latentW]),
      [io.unet.encoderHiddenStates.name]: hiddenRows(hidden, group, batch, rowsPerImage, io.unet.encoderHiddenStates),
    };
    if (io.unet.timestepCond) {
      const dim = typeof io.unet.timestepCond.shape[1] === 'number' ? io.unet.timestepCond.shape[1] : 256;
      const embedding = guidanceScaleEmbedding(job.guidanceScale, dim);
      const rowsData = new Float32Array(rows * dim);
      for (let row = 0; row < rows; row++) rowsData.set(embedding, row * dim);
      feeds[io.unet.timestepCond.name] = floatTensor(io.unet.timestepCond, rowsData, [rows, dim]);
    }
    return { group, rows, sampleData, feeds };
  });
  const guidedOutput = new Float32Array(batch * perImage);
  const stepNoise = new Float32Array(batch * perImage);
  const timings: StepTiming[] = [];
  const total = scheduler.timesteps.length;

  // Set when the previous step's fused pass already wrote this step's UNet input.
  let prefilled = false;
  for (let index = 0; index < total; index++) {
    cancelCheck(index);
    const stepStartedAt = performance.now();
    let unetMs = 0;
    const t = scheduler.timesteps[index];
    const scale = scheduler.inputScale(index);
    // A linear step (Euler, Euler ancestral, DDIM, LCM) is fused with guidance: one pass instead of two.
    const linear = scheduler.linear(index);
    if (linear && linear.noise !== 0) noise.fill(stepNoise);
    const writesNext = linear !== null && !unetIsHalf && index + 1 < total;
    const nextScale = writesNext ? scheduler.inputScale(index + 1) : 1;
    for (const { group, sampleData, feeds } of prepared) {
      const slice = latents.subarray(group.first * perImage, (group.first + group.count) * perImage);
      if (!prefilled) fillUnetSample(slice, sampleData, rowsPerImage, scale);
      feeds[io.unet.timestep.name] = timestepTensor(io.unet.timestep, t);
      const runStartedAt = performance.now();
      const outputs = await run(model.sessions.unet, feeds, 'unet', sizeHint);
      unetMs += performance.now() - runStartedAt;
      const out = outputs[io.unet.output.name].data as FloatData;
      const [from, to] = [group.first * perImage, (group.first + group.count) * perImage];
      if (linear) {
        // The UNet is done with sampleData: its first rows become the next step's input.
        const next = writesNext ? (sampleData as Float32Array).subarray(0, to - from) : null;
        guidedLinearStep(out, guided ? job.guidanceScale : null, linear, latents.subarray(from, to), stepNoise.subarray(from, to), next, nextScale);
        if (next) for (let copy = 1; copy < rowsPerImage; copy++) sampleData.copyWithin(copy * next.length, 0, next.length);
      } else {
        const into = guidedOutput.subarray(from, to);
        if (guided) applyGuidance(out, job.guidanceScale, into);
        else if (out instanceof Uint16Array) unpackHalf(out, into);
        else into.set(out);
      }
      outputs[io.unet.output.name].dispose();
    }
    if (!linear) scheduler.step(index, guidedOutput, latents, noise);
    prefilled = writesNext;
    job.onStep(index + 1, total, performance.timeOrigin + stepStartedAt, wallClock());
    timings.push({ unetMs, otherMs: performance.now() - stepStartedAt - unetMs });
  }
  cancelCheck(total);

  // --- decode ---------------------------------------------------------------------------------
  const vaeStartedAt = performance.now();
  const inverse = 1 / model.folder.vaeScalingFactor;
  const vaeGroups = io.vaeDecoder.fixedBatch === null ? [{ first: 0, count: batch }] : requests.map((_, i) => ({ first: i, count: 1 }));
  if (io.vaeDecoder.fixedBatch !== null && io.vaeDecoder.fixedBatch !== 1) {
    throw new DiffusionInputError(`vae_decoder/model.onnx has a fixed batch of ${io.vaeDecoder.fixedBatch}; only 1 or dynamic is supported`);
  }
  const images: DiffusionResult['images'] = [];
  for (const group of vaeGroups) {
    const slice = latents.subarray(group.first * perImage, (group.first + group.count) * perImage);
    const scaled = new Float32Array(slice.length);
    scaleInto(slice, scaled, inverse);
    const input = floatTensor(io.vaeDecoder.latent, scaled, [group.count, channels, latentH, latentW]);
    const outputs = await run(model.sessions.vaeDecoder, { [io.vaeDecoder.latent.name]: input }, 'vae_decoder');
    const decoded = outputs[io.vaeDecoder.output.name];
    const [, , outH, outW] = decoded.dims;
    if (outH !== height || outW !== width)
      throw new DiffusionInputError(`the VAE decoder made ${outW}×${outH} pictures from ${latentW}×${latentH} latents; expected ${width}×${height}`);
    for (let image = 0; image < group.count; image++) images.push({ rgb: toRgbBytes(decoded.data as FloatData, image, width, height), width, height });
    decoded.dispose();
  }
  const vaeMs = performance.now() - vaeStartedAt;
  return { images, timings: { textEncoderMs, steps: timings, vaeMs, totalMs: performance.now() - startedAt }, steps, guidanceScale: job.guidanceScale };
}

// Per-element loops live in small functions of their own: V8 optimizes those at once,
// whereas the same loop inline in runDiffusion (a long async function) ran ~20× slower.

function scaleInto(source: Float32Array, target: Float32Array, scale: number): void {
  for (let i = 0; i < source.length; i++) target[i] = source[i] * scale;
}

/** The same scaled latents for the unconditional and the conditional rows: read once, written `copies` times. */
function fillUnetSample(latents: Float32Array, sample: FloatData, copies: number, scale: number): void {
  const n = latents.length;
  if (sample instanceof Uint16Array) {
    packHalf(latents, sample.subarray(0, n), scale);
    for (let copy = 1; copy < copies; copy++) sample.copyWithin(copy * n, 0, n);
  } else if (copies === 2) {
    for (let i = 0; i < n; i++) {
      const value = latents[i] * scale;
      sample[i] = value;
      sample[n + i] = value;
    }
  } else {
    for (let copy = 0; copy < copies; copy++) scaleInto(latents, sample.subarray(copy * n, (copy + 1) * n), scale);
  }
}

interface Group {
  first: number;
  count: number;
}

function unetGroups(fixedBatch: number | null, batch: number, rowsPerImage: number): Group[] {
  if (fixedBatch === null) return [{ first: 0, count: batch }];
  if (fixedBatch !== rowsPerImage) {
    throw new DiffusionInputError(
      `unet/model.onnx has a fixed batch of ${fixedBatch} but this run needs ${rowsPerImage} row(s) per picture (${rowsPerImage === 2 ? 'with' : 'without'} guidance); set GUIDANCE_SCALE accordingly or use an export with a dynamic batch`,
    );
  }
  return Array.from({ length: batch }, (_, first) => ({ first, count: 1 }));
}

/** Runs the text encoder on every row: once when its batch is dynamic, row by row when it is fixed at 1. */
async function encodeText(model: LoadedModel, rows: number[][]): Promise<{ data: Float32Array; width: number; length: number }> {
  const { inputIds, output, sequenceLength, fixedBatch } = model.io.textEncoder;
  const encodeRows = async (part: number[][]) => {
    const flat = part.flat();
    const data = inputIds.type === 'int64' ? BigInt64Array.from(flat, BigInt) : Int32Array.from(flat);
    const outputs = await run(model.sessions.textEncoder, { [inputIds.name]: new Tensor(inputIds.type, data, [part.length, sequenceLength]) }, 'text_encoder');
    const tensor = outputs[output.name];
    const values = tensor.data instanceof Uint16Array ? unpackToFloat(tensor.data) : Float32Array.from(tensor.data as Float32Array);
    const width = tensor.dims[2];
    tensor.dispose();
    return { values, width };
  };
  if (fixedBatch === null) {
    const { values, width } = await encodeRows(rows);
    return { data: values, width, length: sequenceLength };
  }
  if (fixedBatch !== 1) throw new DiffusionInputError(`text_encoder/model.onnx has a fixed batch of ${fixedBatch}; only 1 or dynamic is supported`);
  const parts = [];
  for (const row of rows) parts.push(await encodeRows([row]));
  const width = parts[0].width;
  const data = new Float32Array(rows.length * sequenceLength * width);
  parts.forEach((part, index) => data.set(part.values, index * sequenceLength * width));
  return { data, width, length: sequenceLength };
}

/** The encoder rows a UNet group needs, in its row order [uncond of the group, cond of the group]. */
function hiddenRows(
  hidden: { data: Float32Array; width: number; length: number },
  group: Group,
  batch: number,
  rowsPerImage: number,
  spec: TensorSpec,
): Tensor {
  const rowSize = hidden.length * hidden.width;
  const rows = group.count * rowsPerImage;
  const data = new Float32Array(rows * rowSize);
  for (let copy = 0; copy < rowsPerImage; copy++) {
    // Encoder rows are [negatives × batch, prompts × batch] with guidance, [prompts × batch] without.
    const sourceFirst = copy * batch + group.first;
    data.set(hidden.data.subarray(sourceFirst * rowSize, (sourceFirst + group.count) * rowSize), copy * group.count * rowSize);
  }
  return floatTensor(spec, data, [rows, hidden.length, hidden.width]);
}

function floatTensor(spec: TensorSpec, data: Float32Array, dims: number[]): Tensor {
  if (spec.type === 'float16') {
    const half = new Uint16Array(data.length);
    packHalf(data, half);
    return new Tensor('float16', half, dims);
  }
  return new Tensor('float32', data, dims);
}

function unpackToFloat(data: Uint16Array): Float32Array {
  const out = new Float32Array(data.length);
  unpackHalf(data, out);
  return out;
}

/**
 * The timestep as the export declares it. A symbolic length gets one value, as
 * diffusers' and Optimum's ONNX pipelines feed it (the graph broadcasts); a
 * fixed length gets that many copies. Float timesteps of int64 exports are
 * truncated, as numpy's astype does there.
 */
function timestepTensor(spec: TensorSpec, t: number): Tensor {
  const dims = spec.shape.length === 0 ? [] : [typeof spec.shape[0] === 'number' ? spec.shape[0] : 1];
  const count = dims.length === 0 ? 1 : dims[0];
  switch (spec.type) {
    case 'int64':
      return new Tensor('int64', new BigInt64Array(count).fill(BigInt(Math.trunc(t))), dims);
    case 'int32':
      return new Tensor('int32', new Int32Array(count).fill(Math.trunc(t)), dims);
    case 'float16':
      return new Tensor('float16', new Uint16Array(count).fill(toHalfBits(t)), dims);
    default:
      return new Tensor('float32', new Float32Array(count).fill(t), dims);
  }
}

async function run(session: InferenceSession, feeds: Record<string, Tensor>, component: string, hint = ''): Promise<InferenceSession.ReturnType> {
  try {
    return await session.run(feeds);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    throw new Error(`ONNX Runtime failed in ${component}: ${message}${hint}`, { cause: error });
  }
}
