/**
 * IEEE 754 half precision (float16), the tensor type of fp16 exports: packing
 * float32 values into half bits and decoding them, both round-to-nearest-even.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even float32 → IEEE half bits. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

let halfTable: Float32Array | null = null;

/** All 65 536 half values, decoded once (256 KiB), so unpacking is a lookup. */
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    let value: number;
    if (exponent === 0) value = mantissa * 2 ** -24;
    else if (exponent === 0x1f) value = mantissa ? NaN : Infinity;
    else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
    halfTable[h] = sign * value;
  }
  return halfTable;
}

let packScratch = new Float32Array(0);

/**
 * source × scale → IEEE half bits, rounding to nearest even. Normal halves take a
 * branch-light path on the float's bits (this runs on every UNet input of fp16
 * exports); zeros, subnormals and overflow go through toHalfBits.
 */
export function packHalf(source: Float32Array, into: Uint16Array, scale = 1): void {
  const n = source.length;
  if (packScratch.length < n) packScratch = new Float32Array(n);
  const scaled = packScratch;
  for (let i = 0; i < n; i++) scaled[i] = source[i] * scale;
  const bits = new Uint32Array(scaled.buffer, 0, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const abs = x & 0x7fffffff;
    // [2^-14, 65520): the result is a normal half; rebias the exponent and round the 13 dropped bits.
    if (abs >= 0x38800000 && abs < 0x477ff000) into[i] = ((x >>> 16) & 0x8000) | ((abs - 0x38000000 + 0x0fff + ((abs >>> 13) & 1)) >>> 13);
    else into[i] = toHalfBits(scaled[i]);
  }
}

/** Half bits → float32, by table lookup. */
export function unpackHalf(source: Uint16Array, into: Float32Array): void {
  const table = halfToFloatTable();
  for (let i = 0; i < source.length; i++) into[i] = table[source[i]];
}
