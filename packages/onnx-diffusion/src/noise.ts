/**
 * Seeded Gaussian noise for the initial latents and the noise ancestral and
 * LCM steps add, one generator per image.
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
    for (const [index, generator] of this.generators.entries()) generator.fill(out, index * this.perImage, (index + 1) * this.perImage);
  }
}
