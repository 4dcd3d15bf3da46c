import { applyNoisyLinear, type LinearStep, type NoiseSource, type Scheduler, type SchedulerConfigInput, type SchedulerKind } from './scheduler.js';
import { sigmaX0Coefficients, spacedTimesteps, type CommonSettings } from './scheduling-utils.js';

/**
 * diffusers' EulerDiscreteScheduler (Karras et al. 2022, algorithm 2, without
 * churn): σ-parametrised, one Euler step from σᵢ to σᵢ₊₁ per UNet evaluation.
 */
export class EulerDiscreteScheduler implements Scheduler {
  readonly kind: SchedulerKind = 'euler';
  readonly timesteps: number[];
  /** σ per timestep, then 0 for the clean sample. */
  readonly sigmas: number[];
  readonly initNoiseSigma: number;
  readonly notes: string[];
  private scratch: Float32Array | null = null;

  constructor(
    protected readonly common: CommonSettings,
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
    return this.eulerStep(index, this.sigmas[index + 1], 0);
  }

  step(index: number, modelOutput: Float32Array, sample: Float32Array, noise: NoiseSource): void {
    this.scratch = applyNoisyLinear(this.linear(index), modelOutput, sample, noise, this.scratch);
  }

  /** An Euler step from σ of evaluation `index` down to `target`, then `noise` × fresh noise added. */
  protected eulerStep(index: number, target: number, noise: number): LinearStep {
    const sigma = this.sigmas[index];
    const [a, b] = sigmaX0Coefficients(this.common.prediction, sigma);
    // prev = x + (x − x0)/σ · (target − σ), with x0 = a·x + b·m, folded into two coefficients.
    const dt = (target - sigma) / sigma;
    return { sample: 1 + (1 - a) * dt, output: -b * dt, noise };
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
