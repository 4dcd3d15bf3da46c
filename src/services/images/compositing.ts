import sharp from 'sharp';
import { computeMatte, type Matte } from './matting.js';

/**
 * Cut-out and compositing (decoding and encoding with sharp around the pure matting.ts): the character is generated on a plain light background,
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

/** Share of the background height the character's silhouette is scaled to. */
const CHARACTER_HEIGHT_SHARE = 0.75;

export class CompositingError extends Error {
  override name = 'CompositingError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
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
