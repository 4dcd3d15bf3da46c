import sharp from 'sharp';
import { CharacterDistance, CharacterSide } from '../../entities/enums.js';
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

/**
 * Where and how large the character stands: horizontal centre of the
 * silhouette as a share of the width, its height as a share of the scene's,
 * and where its feet are as a share of the height from the top.
 */
export interface Placement {
  centreX: number;
  heightShare: number;
  feetY: number;
}

/** The one-scene design's placement: bottom-centred, ~75 % of the scene's height. */
export const CENTRE_NEAR: Placement = { centreX: 0.5, heightShare: 0.75, feetY: 1 };

const SIDE_CENTRE_X: Record<CharacterSide, number> = {
  [CharacterSide.LEFT]: 0.27,
  [CharacterSide.CENTRE]: 0.5,
  [CharacterSide.RIGHT]: 0.73,
};

/** Far: smaller and standing higher in the picture, as further back on the ground would be seen. */
const DISTANCE_SIZE: Record<CharacterDistance, Pick<Placement, 'heightShare' | 'feetY'>> = {
  [CharacterDistance.NEAR]: { heightShare: 0.75, feetY: 1 },
  [CharacterDistance.FAR]: { heightShare: 0.45, feetY: 0.88 },
};

/** The placement a plan's side and distance stand for. */
export function placementOf(side: CharacterSide, distance: CharacterDistance): Placement {
  return { centreX: SIDE_CENTRE_X[side], ...DISTANCE_SIZE[distance] };
}

/** A character matted once, to be placed into any number of scenes. */
export interface PreparedCharacter {
  matte: Matte;
  /** The character's PNG, for error messages about it. */
  png: Buffer;
}

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
  return compositeOnto(await prepareCharacter(characterPng, limits), backgroundPng, CENTRE_NEAR, limits);
}

/** Mattes the character once (the costly step), for compositeOnto to place it into every page's scene. */
export async function prepareCharacter(characterPng: Buffer, limits: CompositingLimits): Promise<PreparedCharacter> {
  return { matte: await matteCharacter(characterPng, limits), png: characterPng };
}

/**
 * Stands a prepared character on the background at `placement` (its
 * silhouette `heightShare` of the scene's height, never wider than the scene,
 * kept inside it sideways), composites, returns a PNG the size of the background.
 */
export async function compositeOnto(
  character: PreparedCharacter,
  backgroundPng: Buffer,
  placement: Placement,
  limits: CompositingLimits,
): Promise<CompositeResult> {
  const { matte, png: characterPng } = character;
  // Read the background header first so a bad background fails before the (costlier) matting.
  const bg = await guard('Background image', backgroundPng, limits, () => sharp(backgroundPng, { limitInputPixels: limits.maxInputPixels }).metadata());
  const bgWidth = bg.autoOrient?.width ?? bg.width;
  const bgHeight = bg.autoOrient?.height ?? bg.height;
  if (!bgWidth || !bgHeight) throw new CompositingError('Background image has no readable dimensions');

  const background = () => sharp(backgroundPng, { limitInputPixels: limits.maxInputPixels }).autoOrient();

  if (!matte.silhouette || !matte.extent) {
    // Nothing to stand on the scene; the scene alone is still a usable illustration.
    const png = await guard('Background image', backgroundPng, limits, () => background().png().toBuffer());
    return { png, width: bgWidth, height: bgHeight };
  }

  // Size and place by the visible silhouette, not the canvas, so empty margins neither shrink the
  // character nor leave it floating; the soft fringe around it rides along at the same scale.
  const { silhouette: inner, extent: outer } = matte;
  const scale = Math.min((bgHeight * placement.heightShare) / inner.height, bgWidth / inner.width);
  const figureWidth = inner.width * scale;
  const innerLeft = Math.min(bgWidth - figureWidth, Math.max(0, bgWidth * placement.centreX - figureWidth / 2));
  const innerTop = bgHeight * placement.feetY - inner.height * scale;
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
