import { describe, expect, it } from 'vitest';
import { createScheduler } from '../../src/services/images/onnx/schedulers.js';
import {
  applyGuidance,
  BatchNoise,
  GaussianRandom,
  guidedLinearStep,
  packHalf,
  toHalfBits,
  toRgbBytes,
  unpackHalf,
} from '../../src/services/images/onnx/tensor-math.js';

describe('seeded noise', () => {
  it('repeats for a seed and differs between seeds', () => {
    const draw = (seed: number) => Array.from({ length: 8 }, () => new GaussianRandom(seed)).map((g) => g.normal());
    expect(draw(42)).toEqual(draw(42));
    const a = new Float32Array(1000);
    const b = new Float32Array(1000);
    new GaussianRandom(42).fill(a);
    new GaussianRandom(43).fill(b);
    expect(a).not.toEqual(b);
  });

  it('is standard normal (mean ≈ 0, variance ≈ 1 over 100 000 draws)', () => {
    const values = new Float32Array(100_000);
    new GaussianRandom(7).fill(values);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });

  it('gives each image of a batch the noise of its own seed, whatever its batch mates', () => {
    const alone = new Float32Array(16);
    new BatchNoise([5], 16).fill(alone);
    const pair = new Float32Array(32);
    new BatchNoise([9, 5], 16).fill(pair);
    expect(pair.subarray(16)).toEqual(alone);
  });
});

describe('float16', () => {
  it('packs with round-to-nearest-even and unpacks exactly', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(2 ** -24)).toBe(0x0001);
    // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to the even mantissa.
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    const values = new Float32Array([0, 0.5, -1.25, 3.140625, 1000, 2 ** -20]);
    const half = new Uint16Array(values.length);
    packHalf(values, half);
    const back = new Float32Array(values.length);
    unpackHalf(half, back);
    expect(back).toEqual(values);
  });

  it('packs arrays exactly as toHalfBits does, ties, subnormals and overflow included', () => {
    const random = new GaussianRandom(11);
    const values = Float32Array.from({ length: 20_000 }, (_, i) => random.normal() * 10 ** ((i % 12) - 6));
    values.set([0, -0, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -14, 2 ** -15, 65504, 65519, 65520, 1e9, -1e9, 2 ** -25], 0);
    const packed = new Uint16Array(values.length);
    packHalf(values, packed, 1);
    expect(Array.from(packed)).toEqual(Array.from(values, (value) => toHalfBits(value)));
    packHalf(values, packed, 0.5);
    expect(Array.from(packed)).toEqual(Array.from(values, (value) => toHalfBits(value * 0.5)));
  });
});

describe('classifier-free guidance', () => {
  it('is uncond + s·(cond − uncond) over [uncond × B, cond × B]', () => {
    const output = new Float32Array([1, 2, 3, 5]);
    const guided = new Float32Array(2);
    applyGuidance(output, 7.5, guided);
    expect(Array.from(guided)).toEqual([1 + 7.5 * 2, 2 + 7.5 * 3]);
  });

  it('reads float16 outputs', () => {
    const output = new Uint16Array([toHalfBits(1), toHalfBits(2), toHalfBits(3), toHalfBits(5)]);
    const guided = new Float32Array(2);
    applyGuidance(output, 2, guided);
    expect(Array.from(guided)).toEqual([5, 8]);
  });
});

describe('guidance fused with a linear scheduler step', () => {
  const SD = { num_train_timesteps: 1000, beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps_offset: 1 };

  it.each(['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler', 'DDIMScheduler', 'LCMScheduler'])(
    '%s: one fused pass gives what guidance then step() gives, and writes the next UNet input',
    (className) => {
      const scheduler = createScheduler({ _class_name: className, ...SD, clip_sample: false }, 4);
      const output = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i));
      const start = Float32Array.from([0.5, -1, 2, 0.25]);
      const noise = Float32Array.from([0.3, -0.2, 0.1, 1]);
      const separate = Float32Array.from(start);
      const guided = new Float32Array(4);
      applyGuidance(output, 5, guided);
      scheduler.step(1, guided, separate, { fill: (out) => out.set(noise) });
      const fused = Float32Array.from(start);
      const next = new Float32Array(4);
      guidedLinearStep(output, 5, scheduler.linear(1)!, fused, noise, next, 0.5);
      for (let i = 0; i < 4; i++) {
        expect(fused[i]).toBeCloseTo(separate[i], 5);
        expect(next[i]).toBeCloseTo(separate[i] * 0.5, 5);
      }
    },
  );

  it('reads float16 UNet outputs and works without guidance', () => {
    const step = { sample: 0.5, output: 2, noise: 0 };
    const latents = Float32Array.from([1, 2]);
    guidedLinearStep(new Uint16Array([toHalfBits(1), toHalfBits(-1)]), null, step, latents, null);
    expect(Array.from(latents)).toEqual([0.5 + 2, 1 - 2]);
  });

  it('is not offered for PNDM (history) or clipped DDIM', () => {
    const SDc = { num_train_timesteps: 1000, beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
    expect(createScheduler({ _class_name: 'PNDMScheduler', ...SDc }, 4).linear(0)).toBeNull();
    expect(createScheduler({ _class_name: 'DDIMScheduler', ...SDc, clip_sample: true }, 4).linear(0)).toBeNull();
  });
});

describe('VAE output to RGB', () => {
  it('maps −1..1 to 0..255 (x/2 + 0.5, clamped, rounded), planar to interleaved, per image', () => {
    // Two 2×1 images, channels R, G, B.
    const output = new Float32Array([
      -1,
      1,
      0,
      0.5,
      2,
      -2, // image 0: R = (-1, 1), G = (0, 0.5), B = (2, -2)
      0,
      0,
      0,
      0,
      0,
      0, // image 1: grey
    ]);
    expect(Array.from(toRgbBytes(output, 0, 2, 1))).toEqual([0, 128, 255, 255, 191, 0]);
    expect(Array.from(toRgbBytes(output, 1, 2, 1))).toEqual([128, 128, 128, 128, 128, 128]);
  });
});
