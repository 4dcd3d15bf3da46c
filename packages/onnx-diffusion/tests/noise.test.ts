import { describe, expect, it } from 'vitest';
import { BatchNoise, GaussianRandom } from '../src/noise.js';

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
