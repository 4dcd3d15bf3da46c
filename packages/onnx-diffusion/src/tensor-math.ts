/**
 * The per-element work around the models: seeded noise, float16 packing,
 * classifier-free guidance and VAE output → RGB bytes. Each is a single pass
 * into a caller-owned buffer so a denoising step allocates nothing.
 */

/**
 * Standard-normal numbers from a 32-bit seed (splitmix32 → xoshiro128** → Box–Muller).
 * Not PyTorch's generator: a seed here does not reproduce a diffusers picture,
 * only our own, which is what "same seed, same image" promises.
 */
export class GaussianRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform in (0, 1), never 0 (Box–Muller takes its log). */
  uniform(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return (result + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  fill(out: Float32Array, start = 0, end = out.length, scale = 1): void {
    for (let i = start; i < end; i++) out[i] = this.normal() * scale;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** One generator per image of a batch, each filling its own slice: an image's noise does not depend on its batch mates. */
export class BatchNoise {
  private readonly generators: GaussianRandom[];

  constructor(
    seeds: number[],
    private readonly perImage: number,
  ) {
    this.generators = seeds.map((seed) => new GaussianRandom(seed));
  }

  fill(out: Float32Array): void {
    this.generators.forEach((generator, index) => generator.fill(out, index * this.perImage, (index + 1) * this.perImage));
  }
}

// --- float16 ------------------------------------------------------------------------------------

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
function halfToFloatTable(): Float32Array {
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

export function unpackHalf(source: Uint16Array, into: Float32Array): void {
  const table = halfToFloatTable();
  for (let i = 0; i < source.length; i++) into[i] = table[source[i]];
}

// --- guidance and pictures ----------------------------------------------------------------------

/**
 * Classifier-free guidance over a UNet output laid out [uncond × B, cond × B]:
 * guided = uncond + scale · (cond − uncond), written to `into` (B images).
 */
export function applyGuidance(output: Float32Array | Uint16Array, scale: number, into: Float32Array): void {
  const n = into.length;
  if (output instanceof Uint16Array) {
    const table = halfToFloatTable();
    for (let i = 0; i < n; i++) {
      const u = table[output[i]];
      into[i] = u + scale * (table[output[n + i]] - u);
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const u = output[i];
    into[i] = u + scale * (output[n + i] - u);
  }
}

/**
 * Guidance and a linear scheduler step in one pass:
 * latents ← a·latents + b·(u + s·(c − u)) + c·noise, where the UNet output holds
 * [uncond, cond] rows (guidance null: the output is the prediction itself).
 * With `next`, the same pass also writes the next step's UNet input (latents × nextScale),
 * so the latents are read once per step. Together with the input packing, this pass is
 * the per-step cost that is not the UNet (bench/onnx.ts).
 */
export function guidedLinearStep(
  output: Float32Array | Uint16Array,
  guidance: number | null,
  step: { sample: number; output: number; noise: number },
  latents: Float32Array,
  fresh: Float32Array | null,
  next: Float32Array | null = null,
  nextScale = 1,
): void {
  const n = latents.length;
  const { sample: a, output: b, noise: c } = step;
  const noise = c !== 0 && fresh ? fresh : ZERO_NOISE.length >= n ? ZERO_NOISE : (ZERO_NOISE = new Float32Array(n));
  const target = next ?? latents;
  const targetScale = next ? nextScale : 1;
  // b·(u + s·(c − u)) = b(1−s)·u + b·s·c; without guidance the cond half does not exist.
  const bu = guidance === null ? b : b * (1 - guidance);
  const bc = guidance === null ? 0 : b * guidance;
  const condOffset = guidance === null ? 0 : n;
  if (output instanceof Uint16Array) {
    halfLinearStep(output, halfToFloatTable(), a, bu, bc, condOffset, c, noise, latents, target, targetScale);
    return;
  }
  if (c === 0) {
    for (let i = 0; i < n; i++) {
      const x = a * latents[i] + bu * output[i] + bc * output[condOffset + i];
      latents[i] = x;
      target[i] = x * targetScale;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = a * latents[i] + bu * output[i] + bc * output[condOffset + i] + c * noise[i];
    latents[i] = x;
    target[i] = x * targetScale;
  }
}

function halfLinearStep(
  output: Uint16Array,
  table: Float32Array,
  a: number,
  bu: number,
  bc: number,
  condOffset: number,
  c: number,
  noise: Float32Array,
  latents: Float32Array,
  target: Float32Array,
  targetScale: number,
): void {
  const n = latents.length;
  for (let i = 0; i < n; i++) {
    const x = a * latents[i] + bu * table[output[i]] + bc * table[output[condOffset + i]] + c * noise[i];
    latents[i] = x;
    target[i] = x * targetScale;
  }
}

/** Stands in for the noise of steps that draw none, so the fused loop has no branch. */
let ZERO_NOISE = new Float32Array(0);

/** One image of a VAE output [B, 3, H, W] in −1..1 → interleaved RGB bytes, as diffusers' postprocessing rounds them. */
export function toRgbBytes(output: Float32Array | Uint16Array, image: number, width: number, height: number): Uint8Array {
  const plane = width * height;
  const offset = image * 3 * plane;
  const rgb = new Uint8Array(plane * 3);
  const table = output instanceof Uint16Array ? halfToFloatTable() : null;
  for (let channel = 0; channel < 3; channel++) {
    const base = offset + channel * plane;
    for (let p = 0; p < plane; p++) {
      const raw = table ? table[(output as Uint16Array)[base + p]] : (output as Float32Array)[base + p];
      const value = raw / 2 + 0.5;
      rgb[p * 3 + channel] = value <= 0 || Number.isNaN(value) ? 0 : value >= 1 ? 255 : Math.round(value * 255);
    }
  }
  return rgb;
}

/** Milliseconds since the epoch with sub-ms precision: one clock for the main thread and the worker. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
