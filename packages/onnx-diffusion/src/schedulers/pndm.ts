import type { Scheduler, SchedulerConfigInput } from './scheduler.js';
import { bool, type CommonSettings } from './scheduling-utils.js';

/**
 * diffusers' PNDMScheduler with skip_prk_steps (the PLMS variant, Liu et al.
 * 2022): a linear multistep over up to four past model outputs, with the
 * two-point warm-up diffusers uses in place of the Runge-Kutta steps.
 */
export class PndmScheduler implements Scheduler {
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
    private readonly common: CommonSettings,
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
    this.combined ??= new Float32Array(n);
    const output = this.combined;
    const e = this.ets;
    const k = e.length;
    let base = sample;
    if (k === 1 && index === 0) {
      output.set(modelOutput);
      this.currentSample = Float32Array.from(sample);
    } else if (k === 1 && index === 1) {
      for (let i = 0; i < n; i++) output[i] = (modelOutput[i] + e[0][i]) / 2;
      base = this.currentSample ?? sample;
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
