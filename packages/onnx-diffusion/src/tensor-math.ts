import { halfToFloatTable } from './float16.js';

/**
 * The per-element work around the UNet and the VAE: classifier-free guidance,
 * guidance fused with a linear scheduler step, and VAE output → RGB bytes. Each
 * is a single pass into a caller-owned buffer so a denoising step allocates nothing.
 */

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
  if (ZERO_NOISE.length < n) ZERO_NOISE = new Float32Array(n);
  const noise = c !== 0 && fresh ? fresh : ZERO_NOISE;
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
