import { applyNoisyLinear, type LinearStep, type NoiseSource, type Scheduler, type SchedulerConfigInput } from './scheduler.js';
import { alphaCoefficients, bool, num, type CommonSettings } from './scheduling-utils.js';

/**
 * diffusers' LCMScheduler (Luo et al. 2023): a few timesteps taken from the
 * original_inference_steps the model was distilled on; each step predicts the
 * clean sample through the consistency boundary condition and, but for the
 * last, re-noises it to the next timestep.
 */
export class LcmScheduler implements Scheduler {
  readonly kind = 'lcm';
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly notes: string[];
  private readonly finalAlpha: number;
  private readonly timestepScaling: number;
  private scratch: Float32Array | null = null;

  constructor(
    private readonly common: CommonSettings,
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
