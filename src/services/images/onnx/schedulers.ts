/**
 * The denoising schedulers Stable Diffusion exports name in
 * scheduler/scheduler_config.json, re-implemented from diffusers' definitions
 * (EulerDiscrete, EulerAncestralDiscrete, DDIM, PNDM with skip_prk_steps, LCM).
 * Arithmetic is float64 on scalars; per-element work is one fused pass over the
 * latents, in place, because it runs once per step on every latent value and
 * must stay a rounding error next to the UNet (bench/onnx.ts measures it).
 */
export type SchedulerKind = 'euler' | 'euler-ancestral' | 'ddim' | 'pndm' | 'lcm';

/** Fills `out` with standard-normal noise; the caller gives each image of a batch its own seeded generator. */
export interface NoiseSource {
  fill(out: Float32Array): void;
}

export interface Scheduler {
  readonly kind: SchedulerKind;
  /** One entry per UNet evaluation, in order (PNDM evaluates one more than the steps asked for). */
  readonly timesteps: readonly number[];
  /** Multiplies the initial noise. */
  readonly initNoiseSigma: number;
  /** What the config asked for that this implementation does differently (logged once). */
  readonly notes: readonly string[];
  /** scale_model_input, as a multiplier for the UNet's input at evaluation `index`. */
  inputScale(index: number): number;
  /** Advances `sample` in place, given the (guided) model output of evaluation `index`. */
  step(index: number, modelOutput: Float32Array, sample: Float32Array, noise: NoiseSource): void;
  /**
   * When step `index` is linear — sample ← a·sample + b·output + c·noise — its coefficients,
   * so the caller can fold guidance into the same pass over the latents; null when it is not
   * (PNDM's history, DDIM's clipping). step() gives the same result either way.
   */
  linear(index: number): LinearStep | null;
}

export interface LinearStep {
  sample: number;
  output: number;
  /** 0: the step draws no noise. */
  noise: number;
}

/** sample ← a·sample + b·output + c·noise, one pass. */
/** applyLinear for steps that may add noise: draws it into `scratch` (made once, reused) only when the step needs it. */
function applyNoisyLinear(
  step: LinearStep,
  modelOutput: Float32Array,
  sample: Float32Array,
  noise: NoiseSource,
  scratch: Float32Array | null,
): Float32Array | null {
  if (step.noise <= 0) {
    applyLinear(step, modelOutput, sample, null);
    return scratch;
  }
  const fresh = scratch ?? new Float32Array(sample.length);
  noise.fill(fresh);
  applyLinear(step, modelOutput, sample, fresh);
  return fresh;
}

function applyLinear(step: LinearStep, modelOutput: Float32Array, sample: Float32Array, fresh: Float32Array | null): void {
  const { sample: a, output: b, noise: c } = step;
  const n = sample.length;
  if (fresh && c !== 0) for (let i = 0; i < n; i++) sample[i] = a * sample[i] + b * modelOutput[i] + c * fresh[i];
  else for (let i = 0; i < n; i++) sample[i] = a * sample[i] + b * modelOutput[i];
}

export interface SchedulerConfigInput {
  _class_name?: string;
  [key: string]: unknown;
}

type Prediction = 'epsilon' | 'v_prediction' | 'sample';
type Spacing = 'linspace' | 'leading' | 'trailing';

interface Common {
  trainSteps: number;
  alphasCumprod: Float64Array;
  prediction: Prediction;
  spacing: Spacing;
  stepsOffset: number;
  notes: string[];
}

const CLASS_KINDS: Record<string, SchedulerKind> = {
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  LCMScheduler: 'lcm',
};

export function schedulerKindOf(config: SchedulerConfigInput): SchedulerKind | null {
  return CLASS_KINDS[config._class_name ?? ''] ?? null;
}

export function createScheduler(config: SchedulerConfigInput, steps: number): Scheduler {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`the number of inference steps must be a positive integer (got ${steps})`);
  const notes: string[] = [];
  let kind = schedulerKindOf(config);
  if (!kind) {
    notes.push(`${config._class_name ?? 'an unnamed scheduler'} is not implemented; using Euler with the same noise schedule`);
    kind = 'euler';
  }
  const defaultSpacing: Spacing = kind === 'euler' || kind === 'euler-ancestral' ? 'linspace' : 'leading';
  const common = commonSettings(config, defaultSpacing, notes);
  switch (kind) {
    case 'euler':
    case 'euler-ancestral':
      return new EulerScheduler(kind, common, steps, config);
    case 'ddim':
      return new DdimScheduler(common, steps, config);
    case 'pndm':
      return new PndmScheduler(common, steps, config);
    case 'lcm':
      return new LcmScheduler(common, steps, config);
  }
}

// --- shared pieces ----------------------------------------------------------------------

function num(config: SchedulerConfigInput, key: string, fallback: number): number {
  const value = config[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function bool(config: SchedulerConfigInput, key: string, fallback: boolean): boolean {
  const value = config[key];
  return typeof value === 'boolean' ? value : fallback;
}

function commonSettings(config: SchedulerConfigInput, defaultSpacing: Spacing, notes: string[]): Common {
  const trainSteps = num(config, 'num_train_timesteps', 1000);
  const betas = makeBetas(config, trainSteps, notes);
  const alphasCumprod = new Float64Array(trainSteps);
  let product = 1;
  for (let i = 0; i < trainSteps; i++) {
    product *= 1 - betas[i];
    alphasCumprod[i] = product;
  }
  if (config.rescale_betas_zero_snr === true) notes.push('rescale_betas_zero_snr is not implemented and was ignored');
  const prediction = (['epsilon', 'v_prediction', 'sample'] as const).find((p) => p === config.prediction_type) ?? 'epsilon';
  if (config.prediction_type !== undefined && config.prediction_type !== prediction)
    notes.push(`prediction_type ${String(config.prediction_type)} is not supported; using epsilon`);
  const spacing = (['linspace', 'leading', 'trailing'] as const).find((s) => s === config.timestep_spacing) ?? defaultSpacing;
  return { trainSteps, alphasCumprod, prediction, spacing, stepsOffset: num(config, 'steps_offset', 0), notes };
}

function makeBetas(config: SchedulerConfigInput, trainSteps: number, notes: string[]): Float64Array {
  if (Array.isArray(config.trained_betas) && config.trained_betas.length === trainSteps) return Float64Array.from(config.trained_betas as number[]);
  const start = num(config, 'beta_start', 0.0001);
  const end = num(config, 'beta_end', 0.02);
  const betas = new Float64Array(trainSteps);
  const schedule = config.beta_schedule ?? 'linear';
  if (schedule === 'scaled_linear') {
    const [a, b] = [Math.sqrt(start), Math.sqrt(end)];
    for (let i = 0; i < trainSteps; i++) betas[i] = (a + ((b - a) * i) / Math.max(1, trainSteps - 1)) ** 2;
  } else if (schedule === 'squaredcos_cap_v2') {
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < trainSteps; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / trainSteps) / alphaBar(i / trainSteps), 0.999);
  } else {
    if (schedule !== 'linear') notes.push(`beta_schedule ${String(schedule)} is not supported; using linear`);
    for (let i = 0; i < trainSteps; i++) betas[i] = start + ((end - start) * i) / Math.max(1, trainSteps - 1);
  }
  return betas;
}

/** numpy's round: halves go to the even neighbour. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (Math.abs(diff - 0.5) > 1e-9) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Integer timesteps, highest first, as DDIM/PNDM/Euler space them. */
function spacedTimesteps(common: Common, steps: number): number[] {
  const { trainSteps, spacing, stepsOffset } = common;
  const out: number[] = [];
  if (spacing === 'linspace') {
    for (let i = steps - 1; i >= 0; i--) out.push(steps === 1 ? 0 : ((trainSteps - 1) * i) / (steps - 1));
  } else if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    for (let i = steps - 1; i >= 0; i--) out.push(i * ratio + stepsOffset);
  } else {
    const ratio = trainSteps / steps;
    for (let i = 0; i < steps; i++) out.push(roundHalfEven(trainSteps - i * ratio) - 1);
  }
  return out;
}

/** x0 = a·x + b·m: the model's estimate of the clean sample, for each prediction type, given σ (Euler) parametrisation. */
function sigmaX0Coefficients(prediction: Prediction, sigma: number): [number, number] {
  switch (prediction) {
    case 'epsilon':
      return [1, -sigma];
    case 'v_prediction':
      return [1 / (sigma * sigma + 1), -sigma / Math.sqrt(sigma * sigma + 1)];
    case 'sample':
      return [0, 1];
  }
}

/** x0 = a·x + b·m and ε = c·x + d·m in the ᾱ (DDPM) parametrisation. */
function alphaCoefficients(prediction: Prediction, alphaProd: number): { x0: [number, number]; eps: [number, number] } {
  const sa = Math.sqrt(alphaProd);
  const sb = Math.sqrt(1 - alphaProd);
  switch (prediction) {
    case 'epsilon':
      return { x0: [1 / sa, -sb / sa], eps: [0, 1] };
    case 'v_prediction':
      return { x0: [sa, -sb], eps: [sb, sa] };
    case 'sample':
      return { x0: [0, 1], eps: [1 / sb, -sa / sb] };
  }
}

// --- Euler (discrete) and Euler ancestral ---------------------------------------------------

class EulerScheduler implements Scheduler {
  readonly timesteps: number[];
  readonly sigmas: number[];
  readonly initNoiseSigma: number;
  readonly notes: string[];
  private scratch: Float32Array | null = null;

  constructor(
    readonly kind: 'euler' | 'euler-ancestral',
    private readonly common: Common,
    steps: number,
    config: SchedulerConfigInput,
  ) {
    this.notes = common.notes;
    if (config.use_karras_sigmas === true) this.notes.push('use_karras_sigmas is not implemented; using the default sigmas');
    if (typeof config.interpolation_type === 'string' && config.interpolation_type !== 'linear') {
      this.notes.push(`interpolation_type ${config.interpolation_type} is not implemented; using linear`);
    }
    const full = Array.from(common.alphasCumprod, (a) => Math.sqrt((1 - a) / a));
    this.timesteps = spacedTimesteps(common, steps);
    this.sigmas = [...this.timesteps.map((t) => interpolate(full, t)), 0];
    const max = Math.max(...this.sigmas);
    this.initNoiseSigma = common.spacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  inputScale(index: number): number {
    const sigma = this.sigmas[index];
    return 1 / Math.sqrt(sigma * sigma + 1);
  }

  linear(index: number): LinearStep {
    const sigma = this.sigmas[index];
    const sigmaNext = this.sigmas[index + 1];
    const [a, b] = sigmaX0Coefficients(this.common.prediction, sigma);
    let target = sigmaNext;
    let sigmaUp = 0;
    if (this.kind === 'euler-ancestral') {
      sigmaUp = Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma));
      target = Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
    }
    // prev = x + (x − x0)/σ · (target − σ), with x0 = a·x + b·m, folded into two coefficients.
    const dt = (target - sigma) / sigma;
    return { sample: 1 + (1 - a) * dt, output: -b * dt, noise: sigmaUp };
  }

  step(index: number, modelOutput: Float32Array, sample: Float32Array, noise: NoiseSource): void {
    this.scratch = applyNoisyLinear(this.linear(index), modelOutput, sample, noise, this.scratch);
  }
}

/** np.interp over integer abscissae 0..n−1. */
function interpolate(values: number[], x: number): number {
  if (x <= 0) return values[0];
  if (x >= values.length - 1) return values[values.length - 1];
  const low = Math.floor(x);
  const w = x - low;
  return values[low] * (1 - w) + values[low + 1] * w;
}

// --- DDIM (η = 0) ------------------------------------------------------------------------------

class DdimScheduler implements Scheduler {
  readonly kind = 'ddim';
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly notes: string[];
  private readonly finalAlpha: number;
  private readonly stride: number;
  private readonly clip: number | null;

  constructor(
    private readonly common: Common,
    steps: number,
    config: SchedulerConfigInput,
  ) {
    this.notes = common.notes;
    this.timesteps = spacedTimesteps(common, steps).map(roundHalfEven);
    this.stride = Math.floor(common.trainSteps / steps);
    this.finalAlpha = bool(config, 'set_alpha_to_one', true) ? 1 : common.alphasCumprod[0];
    this.clip = bool(config, 'clip_sample', true) ? num(config, 'clip_sample_range', 1) : null;
    if (typeof config.eta === 'number' && config.eta !== 0) this.notes.push('eta is fixed at 0 (deterministic DDIM)');
  }

  inputScale(): number {
    return 1;
  }

  private coefficients(index: number) {
    const t = this.timesteps[index];
    const prevT = t - this.stride;
    const alpha = this.common.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.common.alphasCumprod[prevT] : this.finalAlpha;
    const { x0, eps } = alphaCoefficients(this.common.prediction, alpha);
    return { x0, eps, sp: Math.sqrt(alphaPrev), sq: Math.sqrt(1 - alphaPrev) };
  }

  linear(index: number): LinearStep | null {
    if (this.clip !== null) return null;
    const { x0, eps, sp, sq } = this.coefficients(index);
    return { sample: sp * x0[0] + sq * eps[0], output: sp * x0[1] + sq * eps[1], noise: 0 };
  }

  step(index: number, modelOutput: Float32Array, sample: Float32Array): void {
    const step = this.linear(index);
    if (step) return applyLinear(step, modelOutput, sample, null);
    const { x0, eps, sp, sq } = this.coefficients(index);
    const n = sample.length;
    const range = this.clip!;
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      const predicted = Math.min(range, Math.max(-range, x0[0] * x + x0[1] * m));
      sample[i] = sp * predicted + sq * (eps[0] * x + eps[1] * m);
    }
  }
}

// --- PNDM (PLMS, skip_prk_steps) ---------------------------------------------------------------

class PndmScheduler implements Scheduler {
  readonly kind = 'pndm';
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly notes: string[];
  private readonly stride: number;
  private readonly finalAlpha: number;
  private readonly ets: Float32Array[] = [];
  private currentSample: Float32Array | null = null;
  private combined: Float32Array | null = null;

  constructor(
    private readonly common: Common,
    steps: number,
    config: SchedulerConfigInput,
  ) {
    this.notes = common.notes;
    if (config.skip_prk_steps === false) this.notes.push('Runge-Kutta warm-up (skip_prk_steps=false) is not implemented; using PLMS from the first step');
    if (common.spacing !== 'leading') this.notes.push(`timestep_spacing ${common.spacing} is not implemented for PNDM; using leading`);
    this.stride = Math.floor(common.trainSteps / steps);
    const ascending = Array.from({ length: steps }, (_, i) => i * this.stride + common.stepsOffset);
    // PLMS evaluates the second-to-last timestep twice: its first step is a two-point warm-up.
    const plms = steps === 1 ? ascending : [...ascending.slice(0, -1), ascending[ascending.length - 2], ascending[ascending.length - 1]];
    this.timesteps = plms.reverse();
    this.finalAlpha = bool(config, 'set_alpha_to_one', false) ? 1 : common.alphasCumprod[0];
  }

  inputScale(): number {
    return 1;
  }

  linear(): null {
    return null;
  }

  step(index: number, modelOutput: Float32Array, sample: Float32Array): void {
    let t = this.timesteps[index];
    let prevT = t - this.stride;
    const n = sample.length;
    if (index !== 1) {
      if (this.ets.length > 3) this.ets.shift();
      this.ets.push(Float32Array.from(modelOutput));
    } else {
      prevT = t;
      t = t + this.stride;
    }
    const output = (this.combined ??= new Float32Array(n));
    const e = this.ets;
    const k = e.length;
    let base = sample;
    if (k === 1 && index === 0) {
      output.set(modelOutput);
      this.currentSample = Float32Array.from(sample);
    } else if (k === 1 && index === 1) {
      for (let i = 0; i < n; i++) output[i] = (modelOutput[i] + e[0][i]) / 2;
      base = this.currentSample!;
      this.currentSample = null;
    } else if (k === 2) {
      for (let i = 0; i < n; i++) output[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (k === 3) {
      for (let i = 0; i < n; i++) output[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      for (let i = 0; i < n; i++) output[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    this.previousSample(base, t, prevT, output, sample);
  }

  /** Formula (9) of the PNDM paper, written to `into`. */
  private previousSample(base: Float32Array, t: number, prevT: number, output: Float32Array, into: Float32Array): void {
    const alpha = this.common.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.common.alphasCumprod[prevT] : this.finalAlpha;
    const beta = 1 - alpha;
    const betaPrev = 1 - alphaPrev;
    const sampleCoeff = Math.sqrt(alphaPrev / alpha);
    const denominator = alpha * Math.sqrt(betaPrev) + Math.sqrt(alpha * beta * alphaPrev);
    const outputCoeff = -(alphaPrev - alpha) / denominator;
    const n = into.length;
    if (this.common.prediction === 'v_prediction') {
      // ε from v: √ᾱ·v + √(1−ᾱ)·x
      const [sa, sb] = [Math.sqrt(alpha), Math.sqrt(beta)];
      for (let i = 0; i < n; i++) into[i] = sampleCoeff * base[i] + outputCoeff * (sa * output[i] + sb * base[i]);
    } else {
      for (let i = 0; i < n; i++) into[i] = sampleCoeff * base[i] + outputCoeff * output[i];
    }
  }
}

// --- LCM ---------------------------------------------------------------------------------------

class LcmScheduler implements Scheduler {
  readonly kind = 'lcm';
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly notes: string[];
  private readonly finalAlpha: number;
  private readonly timestepScaling: number;
  private scratch: Float32Array | null = null;

  constructor(
    private readonly common: Common,
    steps: number,
    config: SchedulerConfigInput,
  ) {
    this.notes = common.notes;
    const original = num(config, 'original_inference_steps', 50);
    if (steps > original) throw new Error(`LCM supports at most ${original} steps (original_inference_steps); NUM_INFERENCE_STEPS is ${steps}`);
    const k = Math.floor(common.trainSteps / original);
    const origin = Array.from({ length: original }, (_, i) => (i + 1) * k - 1).reverse();
    this.timesteps = Array.from({ length: steps }, (_, i) => origin[Math.floor((i * origin.length) / steps)]);
    this.finalAlpha = bool(config, 'set_alpha_to_one', true) ? 1 : common.alphasCumprod[0];
    this.timestepScaling = num(config, 'timestep_scaling', 10);
  }

  inputScale(): number {
    return 1;
  }

  /** Consistency-model boundary condition: denoised = c_out·x0 + c_skip·x. */
  scalings(t: number): { cSkip: number; cOut: number } {
    const sigmaData = 0.5;
    const scaled = t * this.timestepScaling;
    return {
      cSkip: (sigmaData * sigmaData) / (scaled * scaled + sigmaData * sigmaData),
      cOut: scaled / Math.sqrt(scaled * scaled + sigmaData * sigmaData),
    };
  }

  linear(index: number): LinearStep {
    const t = this.timesteps[index];
    const last = index === this.timesteps.length - 1;
    const prevT = last ? t : this.timesteps[index + 1];
    const alpha = this.common.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.common.alphasCumprod[prevT] : this.finalAlpha;
    const { x0 } = alphaCoefficients(this.common.prediction, alpha);
    const { cSkip, cOut } = this.scalings(t);
    // denoised = dx·x + dm·m; every step but the last re-noises it to the next timestep.
    const dx = cOut * x0[0] + cSkip;
    const dm = cOut * x0[1];
    if (last) return { sample: dx, output: dm, noise: 0 };
    const [sp, sq] = [Math.sqrt(alphaPrev), Math.sqrt(1 - alphaPrev)];
    return { sample: sp * dx, output: sp * dm, noise: sq };
  }

  step(index: number, modelOutput: Float32Array, sample: Float32Array, noise: NoiseSource): void {
    this.scratch = applyNoisyLinear(this.linear(index), modelOutput, sample, noise, this.scratch);
  }
}

/** LCM's w-embedding for UNets with a `timestep_cond` input (diffusers' get_guidance_scale_embedding of w − 1). */
export function guidanceScaleEmbedding(guidanceScale: number, dim: number): Float32Array {
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const base = Math.log(10000) / (half - 1);
  for (let i = 0; i < half; i++) {
    const angle = w * Math.exp(-base * i);
    out[i] = Math.sin(angle);
    out[half + i] = Math.cos(angle);
  }
  return out;
}
