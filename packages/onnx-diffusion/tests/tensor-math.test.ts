import { describe, expect, it } from 'vitest';
import { toHalfBits } from '../src/float16.js';
import { createScheduler } from '../src/schedulers/scheduler-factory.js';
import { applyGuidance, guidedLinearStep, toRgbBytes } from '../src/tensor-math.js';

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
