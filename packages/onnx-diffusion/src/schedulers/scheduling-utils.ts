import type { SchedulerConfigInput } from './scheduler.js';

/**
 * What the schedulers share, as diffusers' scheduling_utils and each scheduler's
 * __init__ compute it: the β schedule and ᾱ (alphas_cumprod), timestep spacing,
 * and the model-output parametrisations (ε, v, x₀).
 */
export type Prediction = 'epsilon' | 'v_prediction' | 'sample';
export type Spacing = 'linspace' | 'leading' | 'trailing';

/** The settings every scheduler reads from scheduler_config.json, resolved once. */
export interface CommonSettings {
  trainSteps: number;
  alphasCumprod: Float64Array;
  prediction: Prediction;
  spacing: Spacing;
  stepsOffset: number;
  /** Notes shared with the scheduler built on these settings (Scheduler.notes). */
  notes: string[];
}

/** A number from the config, or `fallback` when it is absent or not a finite number. */
export function num(config: SchedulerConfigInput, key: string, fallback: number): number {
  const value = config[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** A boolean from the config, or `fallback` when it is absent or not a boolean. */
export function bool(config: SchedulerConfigInput, key: string, fallback: boolean): boolean {
  const value = config[key];
  return typeof value === 'boolean' ? value : fallback;
}

/** ᾱ from the β schedule, the prediction type and the timestep spacing; what is not supported is noted, not fatal. */
export function commonSettings(config: SchedulerConfigInput, defaultSpacing: Spacing, notes: string[]): CommonSettings {
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
export function spacedTimesteps(common: CommonSettings, steps: number): number[] {
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
export function sigmaX0Coefficients(prediction: Prediction, sigma: number): [number, number] {
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
export function alphaCoefficients(prediction: Prediction, alphaProd: number): { x0: [number, number]; eps: [number, number] } {
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
