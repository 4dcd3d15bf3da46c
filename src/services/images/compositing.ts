import sharp from 'sharp';

/**
 * Cut-out and compositing: the character is generated on a plain light background,
 * matted out here, and stood on the separately generated scene.
 */

export interface CompositingLimits {
  maxInputPixels: number;
}

export interface CompositeResult {
  png: Buffer;
  width: number;
  height: number;
}

export class CompositingError extends Error {
  override name = 'CompositingError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Share of the background height the character's silhouette is scaled to. */
const CHARACTER_HEIGHT_SHARE = 0.75;
/** Alpha from which a pixel counts as visibly part of the character (sizing); fainter ones are fringe. */
const SILHOUETTE_ALPHA = 128;
/** Border pixels this far (RGB distance) from the background colour are character, not grain. */
const NOISE_CEILING = 96;
/** Width (px) of the soft edge whose colour is replaced: the ramp plus the blur's reach. */
const EDGE_DEPTH = 4;

interface RgbaImage {
  data: Buffer;
  width: number;
  height: number;
}

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

interface Matte extends RgbaImage {
  /** Bounding box of the visible character (alpha >= SILHOUETTE_ALPHA); null when only background was found. */
  silhouette: Box | null;
  /** Bounding box of every non-transparent pixel, soft fringe included. */
  extent: Box | null;
}

/** Cuts the character out of its plain, light background: returns an RGBA PNG whose alpha is a soft matte. */
export async function cutOutCharacter(characterPng: Buffer, limits: CompositingLimits): Promise<Buffer> {
  const matte = await matteCharacter(characterPng, limits);
  return guard('Character image', characterPng, limits, () =>
    sharp(matte.data, {
      raw: { width: matte.width, height: matte.height, channels: 4 },
      limitInputPixels: limits.maxInputPixels,
    })
      .png()
      .toBuffer(),
  );
}

/**
 * Cuts the character out, scales it to stand on the background (bottom-centred, ~75% of the
 * background height, never larger than the background), composites, returns a PNG the size of the background.
 */
export async function compositeCharacter(characterPng: Buffer, backgroundPng: Buffer, limits: CompositingLimits): Promise<CompositeResult> {
  // Read the background header first so a bad background fails before the (costlier) matting.
  const bg = await guard('Background image', backgroundPng, limits, () => sharp(backgroundPng, { limitInputPixels: limits.maxInputPixels }).metadata());
  const bgWidth = bg.autoOrient?.width ?? bg.width;
  const bgHeight = bg.autoOrient?.height ?? bg.height;
  if (!bgWidth || !bgHeight) throw new CompositingError('Background image has no readable dimensions');

  const matte = await matteCharacter(characterPng, limits);
  const background = () => sharp(backgroundPng, { limitInputPixels: limits.maxInputPixels }).autoOrient();

  if (!matte.silhouette || !matte.extent) {
    // Nothing to stand on the scene; the scene alone is still a usable illustration.
    const png = await guard('Background image', backgroundPng, limits, () => background().png().toBuffer());
    return { png, width: bgWidth, height: bgHeight };
  }

  // Size and place by the visible silhouette, not the canvas, so empty margins neither shrink the
  // character nor leave it floating; the soft fringe around it rides along at the same scale.
  const { silhouette: inner, extent: outer } = matte;
  const scale = Math.min((bgHeight * CHARACTER_HEIGHT_SHARE) / inner.height, bgWidth / inner.width);
  const innerLeft = (bgWidth - inner.width * scale) / 2;
  const innerTop = bgHeight - inner.height * scale;
  const width = Math.max(1, Math.round(outer.width * scale));
  const height = Math.max(1, Math.round(outer.height * scale));
  const left = Math.round(innerLeft - (inner.left - outer.left) * scale);
  const top = Math.round(innerTop - (inner.top - outer.top) * scale);
  // The fringe pokes past the scene's bottom edge (and its sides when width-limited); sharp wants overlays inside the base.
  const clip = {
    left: Math.max(0, -left),
    top: Math.max(0, -top),
    width: Math.min(width, bgWidth - left) - Math.max(0, -left),
    height: Math.min(height, bgHeight - top) - Math.max(0, -top),
  };
  if (clip.width <= 0 || clip.height <= 0) throw new CompositingError('Character could not be placed on the background');

  const figure = await guard('Character image', characterPng, limits, () =>
    sharp(matte.data, {
      raw: { width: matte.width, height: matte.height, channels: 4 },
      limitInputPixels: limits.maxInputPixels,
    })
      .extract(outer)
      .resize(width, height, { fit: 'fill' })
      .extract(clip)
      .raw()
      .toBuffer(),
  );

  const png = await guard('Background image', backgroundPng, limits, () =>
    background()
      .composite([
        {
          input: figure,
          raw: { width: clip.width, height: clip.height, channels: 4 },
          limitInputPixels: limits.maxInputPixels,
          left: left + clip.left,
          top: top + clip.top,
        },
      ])
      .png()
      .toBuffer(),
  );
  return { png, width: bgWidth, height: bgHeight };
}

async function matteCharacter(characterPng: Buffer, limits: CompositingLimits): Promise<Matte> {
  const { data, info } = await guard('Character image', characterPng, limits, () =>
    sharp(characterPng, { limitInputPixels: limits.maxInputPixels })
      .autoOrient()
      .toColourspace('srgb')
      .ensureAlpha()
      // 16-bit PNGs would otherwise come out as two bytes per sample.
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }),
  );
  if (info.channels !== 4) throw new CompositingError(`Character image decoded to ${info.channels} channels, expected 4`);
  return computeMatte({ data, width: info.width, height: info.height });
}

/**
 * Everything here is a fixed number of linear passes over typed arrays, so the cost is
 * O(pixels) with no per-pixel allocation.
 */
function computeMatte(image: RgbaImage): Matte {
  const { data, width: w, height: h } = image;
  const n = w * h;

  const [bgR, bgG, bgB] = borderMedian(data, w, h);

  const dist = new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    // Already-transparent input pixels are background whatever colour they carry.
    if (data[p + 3] < 8) continue;
    const dr = data[p] - bgR;
    const dg = data[p + 1] - bgG;
    const db = data[p + 2] - bgB;
    dist[i] = Math.sqrt(dr * dr + dg * dg + db * db);
  }

  const { low, high } = thresholds(dist, w, h);

  // Only background reachable from the border is removed, so enclosed light areas (eyes, teeth, highlights) stay opaque.
  // Marked when queued so each pixel enters the queue at most once: O(pixels), no recursion.
  const reached = new Uint8Array(n);
  const queue = new Int32Array(n);
  let tail = 0;
  forEachBorderPixel(w, h, (i) => {
    if (!reached[i] && dist[i] < high) {
      reached[i] = 1;
      queue[tail++] = i;
    }
  });
  for (let head = 0; head < tail; head++) {
    const i = queue[head];
    const x = i % w;
    let j = i - 1;
    if (x > 0 && !reached[j] && dist[j] < high) {
      reached[j] = 1;
      queue[tail++] = j;
    }
    j = i + 1;
    if (x < w - 1 && !reached[j] && dist[j] < high) {
      reached[j] = 1;
      queue[tail++] = j;
    }
    j = i - w;
    if (j >= 0 && !reached[j] && dist[j] < high) {
      reached[j] = 1;
      queue[tail++] = j;
    }
    j = i + w;
    if (j < n && !reached[j] && dist[j] < high) {
      reached[j] = 1;
      queue[tail++] = j;
    }
  }

  const alpha = new Uint8Array(n);
  const span = high - low;
  for (let i = 0; i < n; i++) {
    if (!reached[i]) {
      alpha[i] = 255;
    } else if (dist[i] > low) {
      // Smoothstep rather than a linear ramp: no visible kink where the edge meets solid colour.
      const t = (dist[i] - low) / span;
      alpha[i] = Math.round(t * t * (3 - 2 * t) * 255);
    }
  }

  const out = Buffer.from(data);
  const soft = blurAlpha(alpha, w, h);
  const silhouette = new BoxBuilder();
  const extent = new BoxBuilder();
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      // Respect any transparency the input already had.
      const a = ((soft[i] * data[i * 4 + 3] + 127) / 255) | 0;
      out[i * 4 + 3] = a;
      if (a > 0) extent.add(x, y);
      if (a >= SILHOUETTE_ALPHA) silhouette.add(x, y);
    }
  }

  decontaminateEdge(out, w, queue);
  return { data: out, width: w, height: h, silhouette: silhouette.box(), extent: extent.box() };
}

class BoxBuilder {
  private minX = Infinity;
  private minY = Infinity;
  private maxX = -1;
  private maxY = -1;

  add(x: number, y: number): void {
    if (x < this.minX) this.minX = x;
    if (x > this.maxX) this.maxX = x;
    if (y < this.minY) this.minY = y;
    if (y > this.maxY) this.maxY = y;
  }

  box(): Box | null {
    if (this.maxX < 0) return null;
    return { left: this.minX, top: this.minY, width: this.maxX - this.minX + 1, height: this.maxY - this.minY + 1 };
  }
}

/** Median per channel of the border ring: robust to a character touching the edge or a stray vignette. */
function borderMedian(data: Buffer, w: number, h: number): [number, number, number] {
  const hist = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  let count = 0;
  const add = (i: number) => {
    const p = i * 4;
    if (data[p + 3] < 8) return;
    hist[0][data[p]]++;
    hist[1][data[p + 1]]++;
    hist[2][data[p + 2]]++;
    count++;
  };
  forEachBorderPixel(w, h, add);
  // A fully transparent border says nothing about colour; white is the prompt's intended background.
  if (count === 0) return [255, 255, 255];
  const median = (channel: Uint32Array) => {
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += channel[v];
      if (seen * 2 >= count) return v;
    }
    return 255;
  };
  return [median(hist[0]), median(hist[1]), median(hist[2])];
}

/**
 * Distance thresholds adapt to how noisy the border is (generated "plain" backgrounds
 * have grain and gradients), but are capped so a busy border can't eat the character.
 */
function thresholds(dist: Float32Array, w: number, h: number): { low: number; high: number } {
  const hist = new Uint32Array(NOISE_CEILING);
  let count = 0;
  forEachBorderPixel(w, h, (i) => {
    // A character cropped by the frame also sits on the border; it is not background noise.
    if (dist[i] >= NOISE_CEILING) return;
    hist[Math.round(dist[i])]++;
    count++;
  });
  let seen = 0;
  let p90 = 0;
  for (let v = 0; v < hist.length && count > 0; v++) {
    seen += hist[v];
    if (seen >= count * 0.9) {
      p90 = v;
      break;
    }
  }
  const low = Math.min(48, Math.max(16, p90 + 8));
  return { low, high: low + 40 };
}

function forEachBorderPixel(w: number, h: number, visit: (i: number) => void): void {
  for (let x = 0; x < w; x++) {
    visit(x);
    if (h > 1) visit((h - 1) * w + x);
  }
  for (let y = 1; y < h - 1; y++) {
    visit(y * w);
    if (w > 1) visit(y * w + w - 1);
  }
}

/**
 * Edge pixels are partly the old light background (anti-aliasing, and the ramp keeps some of them
 * opaque), which shows as a pale outline on darker scenes. Every pixel of the soft edge therefore
 * takes the colour of the nearest fully opaque pixel (multi-source BFS a few px deep).
 */
function decontaminateEdge(rgba: Buffer, w: number, queue: Int32Array): void {
  const n = rgba.length / 4;
  const depth = new Uint8Array(n);
  const done = new Uint8Array(n);
  let tail = 0;
  for (let i = 0, x = 0; i < n; i++, x = x === w - 1 ? 0 : x + 1) {
    if (rgba[i * 4 + 3] !== 255) continue;
    done[i] = 1;
    const soft =
      (x > 0 && rgba[i * 4 - 1] !== 255) ||
      (x < w - 1 && rgba[i * 4 + 7] !== 255) ||
      (i >= w && rgba[(i - w) * 4 + 3] !== 255) ||
      (i < n - w && rgba[(i + w) * 4 + 3] !== 255);
    if (soft) queue[tail++] = i;
  }
  for (let head = 0; head < tail; head++) {
    const i = queue[head];
    const d = depth[i];
    if (d >= EDGE_DEPTH) continue;
    const x = i % w;
    for (let k = 0; k < 4; k++) {
      const j = k === 0 ? (x > 0 ? i - 1 : -1) : k === 1 ? (x < w - 1 ? i + 1 : -1) : k === 2 ? i - w : i + w;
      if (j < 0 || j >= n || done[j]) continue;
      done[j] = 1;
      depth[j] = d + 1;
      rgba[j * 4] = rgba[i * 4];
      rgba[j * 4 + 1] = rgba[i * 4 + 1];
      rgba[j * 4 + 2] = rgba[i * 4 + 2];
      queue[tail++] = j;
    }
  }
}

/** Separable [1 4 6 4 1]/16 (a ~1px Gaussian) on the alpha plane only, so colours stay sharp. */
function blurAlpha(alpha: Uint8Array, w: number, h: number): Uint8Array {
  const tmp = new Uint16Array(alpha.length);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const a0 = alpha[row + Math.max(0, x - 2)];
      const a1 = alpha[row + Math.max(0, x - 1)];
      const a3 = alpha[row + Math.min(w - 1, x + 1)];
      const a4 = alpha[row + Math.min(w - 1, x + 2)];
      tmp[row + x] = a0 + 4 * a1 + 6 * alpha[row + x] + 4 * a3 + a4;
    }
  }
  const out = new Uint8Array(alpha.length);
  for (let y = 0; y < h; y++) {
    const r0 = Math.max(0, y - 2) * w;
    const r1 = Math.max(0, y - 1) * w;
    const r2 = y * w;
    const r3 = Math.min(h - 1, y + 1) * w;
    const r4 = Math.min(h - 1, y + 2) * w;
    for (let x = 0; x < w; x++) {
      out[r2 + x] = (tmp[r0 + x] + 4 * tmp[r1 + x] + 6 * tmp[r2 + x] + 4 * tmp[r3 + x] + tmp[r4 + x] + 128) >> 8;
    }
  }
  return out;
}

/** Runs a sharp step and turns its failures into messages a story author can act on. */
async function guard<T>(label: string, input: Buffer, limits: CompositingLimits, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof CompositingError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    if (/pixel limit/i.test(detail)) {
      throw new CompositingError(await describeOversize(label, input, limits), { cause: error });
    }
    if (/unsupported image format|read error|corrupt|premature|bad (seek|header)|invalid/i.test(detail)) {
      throw new CompositingError(`${label} is not a readable image (${detail})`, { cause: error });
    }
    throw new CompositingError(`${label} could not be processed: ${detail}`, { cause: error });
  }
}

async function describeOversize(label: string, input: Buffer, limits: CompositingLimits): Promise<string> {
  const limit = `the ${limits.maxInputPixels}-pixel limit (MAX_INPUT_PIXELS)`;
  try {
    // Header-only read for the message; sharp's default cap still applies, pixels are never decoded.
    const { width, height } = await sharp(input).metadata();
    return `${label} of ${width}×${height} pixels is above ${limit}`;
  } catch {
    return `${label} is above ${limit}`;
  }
}
