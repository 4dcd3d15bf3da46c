import { describe, expect, it } from 'vitest';
import { packHalf, toHalfBits, unpackHalf } from '../src/float16.js';
import { GaussianRandom } from '../src/noise.js';

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
