import { applyLinear, type LinearStep, type Scheduler, type SchedulerConfigInput } from './scheduler.js';
import { alphaCoefficients, bool, num, roundHalfEven, spacedTimesteps, type CommonSettings } from './scheduling-utils.js';

/**
 * diffusers' DDIMScheduler with η = 0 (Song et al. 2020, eq. 12): deterministic,
 * x₀ predicted from the model output (clipped to ±clip_sample_range when
 * clip_sample), then moved to the previous timestep's ᾱ.
 */
export class DdimScheduler implements Scheduler {
  readonly kind = 'ddim';
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly notes: string[];
  private readonly finalAlpha: number;
  private readonly stride: number;
  private readonly clip: number | null;

  constructor(
    private readonly common: CommonSettings,
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
    if (step) {
      applyLinear(step, modelOutput, sample, null);
      return;
    }
    const { x0, eps, sp, sq } = this.coefficients(index);
    const n = sample.length;
    // linear() answers null only when clipping is on.
    const range = this.clip ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      const predicted = Math.min(range, Math.max(-range, x0[0] * x + x0[1] * m));
      sample[i] = sp * predicted + sq * (eps[0] * x + eps[1] * m);
    }
  }
}
