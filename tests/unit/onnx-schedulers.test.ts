import { describe, expect, it } from 'vitest';
import { createScheduler, guidanceScaleEmbedding, roundHalfEven, type NoiseSource } from '../../src/services/images/onnx/schedulers.js';

/**
 * Hand-computed checks. "Constant" is a 10-step schedule with β = 0.1 everywhere, so
 * ᾱ_t = 0.9^(t+1) and σ_t = √((1−ᾱ_t)/ᾱ_t): σ_5 = √(0.468559/0.531441) = 0.938976…,
 * σ_0 = √(0.1/0.9) = 1/3. The SD schedule is scaled_linear 0.00085…0.012 over 1000 steps.
 */
const CONSTANT = { num_train_timesteps: 10, beta_schedule: 'linear', beta_start: 0.1, beta_end: 0.1, steps_offset: 0 };
const SD = { num_train_timesteps: 1000, beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps_offset: 1 };
const constantNoise = (value: number): NoiseSource => ({ fill: (out) => out.fill(value) });
const noNoise: NoiseSource = { fill: () => expect.unreachable('this scheduler draws no noise') };

function stepOnce(scheduler: ReturnType<typeof createScheduler>, index: number, sample: number, output: number, noise = noNoise): number {
  const x = new Float32Array([sample]);
  scheduler.step(index, new Float32Array([output]), x, noise);
  return x[0];
}

describe('timestep spacing (diffusers behaviour)', () => {
  it('rounds halves to even, as numpy does', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3]);
  });

  it('SD-Turbo: one trailing Euler step at t=999, σ=14.6146', () => {
    const scheduler = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, timestep_spacing: 'trailing' }, 1);
    expect(scheduler.timesteps).toEqual([999]);
    expect(scheduler.initNoiseSigma).toBeCloseTo(14.6146, 3);
    expect(scheduler.inputScale(0)).toBeCloseTo(1 / Math.sqrt(14.614641 ** 2 + 1), 6);
  });

  it('trailing spacing over 10 steps in 3: 9, 6, 2 (round(10, 6.67, 3.33) − 1)', () => {
    expect(createScheduler({ _class_name: 'EulerDiscreteScheduler', ...CONSTANT, timestep_spacing: 'trailing' }, 3).timesteps).toEqual([9, 6, 2]);
  });

  it('Euler leading, 20 steps: 951, 901, …, 1', () => {
    const { timesteps } = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, timestep_spacing: 'leading' }, 20);
    expect(timesteps).toHaveLength(20);
    expect(timesteps.slice(0, 3)).toEqual([951, 901, 851]);
    expect(timesteps.at(-1)).toBe(1);
  });

  it('Euler linspace (its default): from 999 to 0', () => {
    const { timesteps } = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD }, 4);
    expect(timesteps).toEqual([999, 666, 333, 0]);
  });

  it('DDIM, 50 steps: 981, 961, …, 1', () => {
    const { timesteps } = createScheduler({ _class_name: 'DDIMScheduler', ...SD }, 50);
    expect(timesteps.slice(0, 2)).toEqual([981, 961]);
    expect(timesteps.at(-1)).toBe(1);
  });

  it('PNDM (SD 1.5), 50 steps: PLMS evaluates 961 twice, 51 UNet runs', () => {
    const { timesteps } = createScheduler({ _class_name: 'PNDMScheduler', ...SD, skip_prk_steps: true }, 50);
    expect(timesteps).toHaveLength(51);
    expect(timesteps.slice(0, 4)).toEqual([981, 961, 961, 941]);
    expect(timesteps.at(-1)).toBe(1);
  });

  it('LCM, 4 steps: 999, 759, 499, 259', () => {
    expect(createScheduler({ _class_name: 'LCMScheduler', ...SD, original_inference_steps: 50 }, 4).timesteps).toEqual([999, 759, 499, 259]);
  });

  it('falls back to Euler for a scheduler it does not implement, and says so', () => {
    const scheduler = createScheduler({ _class_name: 'DPMSolverMultistepScheduler', ...SD }, 10);
    expect(scheduler.kind).toBe('euler');
    expect(scheduler.notes.join()).toContain('DPMSolverMultistepScheduler is not implemented');
  });
});

describe('step arithmetic on the constant schedule', () => {
  it('Euler (epsilon): x + ε·(σ_next − σ) = 1 + 0.5·(1/3 − 0.938976) = 0.697179', () => {
    const scheduler = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...CONSTANT, timestep_spacing: 'leading' }, 2);
    expect(scheduler.timesteps).toEqual([5, 0]);
    // Leading spacing scales the first noise by √(σ_max² + 1).
    expect(scheduler.initNoiseSigma).toBeCloseTo(1.371742, 5);
    expect(stepOnce(scheduler, 0, 1, 0.5)).toBeCloseTo(0.697179, 5);
    // Last step goes to σ = 0: x − σ·ε, the predicted clean sample.
    expect(stepOnce(scheduler, 1, 1, 0.5)).toBeCloseTo(1 - 0.5 / 3, 5);
  });

  it('Euler (v-prediction): x0 = −σ/√(σ²+1)·v + x/(σ²+1), then the same Euler move → 0.477021', () => {
    const scheduler = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...CONSTANT, timestep_spacing: 'leading', prediction_type: 'v_prediction' }, 2);
    expect(stepOnce(scheduler, 0, 1, 0.5)).toBeCloseTo(0.477021, 5);
  });

  it('Euler ancestral: σ_up = 0.311623, σ_down = 0.118332; x + ε·(σ_down − σ) + 0.25·σ_up = 0.667584', () => {
    const scheduler = createScheduler({ _class_name: 'EulerAncestralDiscreteScheduler', ...CONSTANT, timestep_spacing: 'leading' }, 2);
    expect(stepOnce(scheduler, 0, 1, 0.5, constantNoise(0.25))).toBeCloseTo(0.667584, 5);
  });

  it('DDIM (η=0): √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε with x0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t → 1.014067', () => {
    const scheduler = createScheduler({ _class_name: 'DDIMScheduler', ...CONSTANT, clip_sample: false }, 2);
    expect(scheduler.timesteps).toEqual([5, 0]);
    expect(scheduler.initNoiseSigma).toBe(1);
    expect(stepOnce(scheduler, 0, 1, 0.5)).toBeCloseTo(1.014067, 5);
  });

  it('DDIM clips x0 to ±1 when clip_sample is on (x0 = 1.84 → 1): 0.790569', () => {
    const clipped = createScheduler({ _class_name: 'DDIMScheduler', ...CONSTANT, clip_sample: true }, 2);
    const unclipped = createScheduler({ _class_name: 'DDIMScheduler', ...CONSTANT, clip_sample: false }, 2);
    expect(stepOnce(clipped, 0, 1, -0.5)).toBeCloseTo(0.790569, 5);
    expect(stepOnce(unclipped, 0, 1, -0.5)).toBeCloseTo(1.58863, 5);
  });

  it('PNDM: first step equals DDIM, second averages ε from the saved sample, third is 2-point Adams–Bashforth', () => {
    const scheduler = createScheduler({ _class_name: 'PNDMScheduler', ...CONSTANT, set_alpha_to_one: true }, 2);
    expect(scheduler.timesteps).toEqual([5, 0, 0]);
    const x = new Float32Array([1]);
    scheduler.step(0, new Float32Array([0.5]), x, noNoise);
    expect(x[0]).toBeCloseTo(1.014067, 5);
    scheduler.step(1, new Float32Array([0.3]), x, noNoise);
    // Restarts from the first sample (1) with ε = (0.3 + 0.5)/2, from t=5 to t=0.
    expect(x[0]).toBeCloseTo(1.071523, 5);
    scheduler.step(2, new Float32Array([0.1]), x, noNoise);
    // ε = (3·0.1 − 0.5)/2, from t=0 to the final ᾱ = 1.
    expect(x[0]).toBeCloseTo(1.162818, 5);
  });

  it('LCM: c_skip/c_out boundary condition, then re-noise to the next timestep with the drawn noise', () => {
    const scheduler = createScheduler({ _class_name: 'LCMScheduler', ...CONSTANT, original_inference_steps: 5 }, 2);
    expect(scheduler.timesteps).toEqual([9, 5]);
    // t=9: scaled 90, c_skip = 0.25/8100.25, c_out = 90/√8100.25; denoised 1.010155; √ᾱ_5·1.010155 + √(1−ᾱ_5)·0.25.
    expect(stepOnce(scheduler, 0, 1, 0.5, constantNoise(0.25))).toBeCloseTo(0.907532, 5);
    // The last step returns the denoised sample itself and draws no noise.
    expect(stepOnce(scheduler, 1, 1, 0.5)).toBeCloseTo(0.902309, 5);
  });

  it('updates a whole latent in place, element by element', () => {
    const scheduler = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...CONSTANT, timestep_spacing: 'leading' }, 2);
    const x = new Float32Array([1, 2, -1]);
    scheduler.step(0, new Float32Array([0.5, 0, 1]), x, noNoise);
    const delta = 1 / 3 - 0.9389762633628821;
    expect(Array.from(x)).toEqual([1 + 0.5 * delta, 2, -1 + delta].map((v) => Math.fround(v)));
  });
});

describe('LCM guidance embedding', () => {
  it('is [sin(w·f), cos(w·f)] with w = (scale − 1)·1000 and f = exp(−ln(10⁴)·i/(half−1))', () => {
    const embedding = guidanceScaleEmbedding(2, 4);
    expect(Array.from(embedding)).toEqual([Math.sin(1000), Math.sin(0.1), Math.cos(1000), Math.cos(0.1)].map((v) => expect.closeTo(v, 5)));
  });
});
