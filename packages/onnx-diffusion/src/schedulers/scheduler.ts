/**
 * What every denoising scheduler offers the diffusion loop, re-implemented from
 * diffusers' SchedulerMixin contract (set_timesteps, scale_model_input, step).
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

/** scheduler/scheduler_config.json as read: diffusers' class name and its constructor arguments. */
export interface SchedulerConfigInput {
  _class_name?: string;
  [key: string]: unknown;
}

/** applyLinear for steps that may add noise: draws it into `scratch` (made once, reused) only when the step needs it. */
export function applyNoisyLinear(
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

/** sample ← a·sample + b·output + c·noise, one pass. */
export function applyLinear(step: LinearStep, modelOutput: Float32Array, sample: Float32Array, fresh: Float32Array | null): void {
  const { sample: a, output: b, noise: c } = step;
  const n = sample.length;
  if (fresh && c !== 0) for (let i = 0; i < n; i++) sample[i] = a * sample[i] + b * modelOutput[i] + c * fresh[i];
  else for (let i = 0; i < n; i++) sample[i] = a * sample[i] + b * modelOutput[i];
}
