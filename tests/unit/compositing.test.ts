import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CharacterDistance, CharacterSide } from '../../src/entities/enums.js';
import {
  CENTRE_NEAR,
  CompositingError,
  compositeCharacter,
  compositeOnto,
  cutOutCharacter,
  placementOf,
  prepareCharacter,
} from '../../src/services/images/compositing.js';

const limits = { maxInputPixels: 4096 * 4096 };
const NEAR_WHITE = '#f4f4f0';
const DARK_RED = '#8b1010';

/** A dark red disc (optionally with a light "eye" of the backdrop colour) on a near-white backdrop. */
async function characterPicture(options: { size?: number; radius?: number; eye?: boolean } = {}): Promise<Buffer> {
  const size = options.size ?? 64;
  const radius = options.radius ?? 22;
  const c = size / 2;
  const eye = options.eye ? `<circle cx="${c}" cy="${c}" r="5" fill="${NEAR_WHITE}"/>` : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
    <rect width="100%" height="100%" fill="${NEAR_WHITE}"/>
    <circle cx="${c}" cy="${c}" r="${radius}" fill="${DARK_RED}"/>${eye}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function solid(width: number, height: number, colour: string): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } })
    .png()
    .toBuffer();
}

interface Pixels {
  width: number;
  height: number;
  at(x: number, y: number): [number, number, number, number];
}

async function pixels(png: Buffer): Promise<Pixels> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    at: (x, y) => {
      const p = (y * info.width + x) * 4;
      return [data[p], data[p + 1], data[p + 2], data[p + 3]];
    },
  };
}

const isRedish = ([r, g, b]: number[]) => r > 100 && g < 60 && b < 60;
const isBlue = ([r, g, b]: number[]) => r < 20 && g < 20 && b > 200;

describe('cutOutCharacter', () => {
  it('makes the plain background transparent and keeps the character fully opaque', async () => {
    const cut = await pixels(await cutOutCharacter(await characterPicture(), limits));

    expect(cut.width).toBe(64);
    expect(cut.height).toBe(64);
    for (const [x, y] of [
      [0, 0],
      [63, 0],
      [0, 63],
      [63, 63],
    ])
      expect(cut.at(x, y)[3]).toBe(0);
    expect(cut.at(32, 32)[3]).toBe(255);
    expect(isRedish(cut.at(32, 32))).toBe(true);
  });

  it('follows the silhouette rather than a rectangle, with a soft edge', async () => {
    const cut = await pixels(await cutOutCharacter(await characterPicture(), limits));

    // Corners of the disc's bounding box lie outside the disc.
    expect(cut.at(12, 12)[3]).toBe(0);
    expect(cut.at(51, 51)[3]).toBe(0);

    const row = Array.from({ length: 64 }, (_, x) => cut.at(x, 32)[3]);
    const partial = row.filter((a) => a > 0 && a < 255);
    expect(partial.length).toBeGreaterThanOrEqual(2);
    // Alpha rises monotonically from the background into the disc on the left edge.
    const left = row.slice(0, 33);
    for (let x = 1; x < left.length; x++) expect(left[x]).toBeGreaterThanOrEqual(left[x - 1]);
  });

  it('keeps light regions enclosed by the character opaque', async () => {
    const cut = await pixels(await cutOutCharacter(await characterPicture({ eye: true }), limits));

    const [r, g, b, a] = cut.at(32, 32);
    expect(a).toBe(255);
    expect(Math.min(r, g, b)).toBeGreaterThan(200);
    expect(cut.at(0, 0)[3]).toBe(0);
  });

  it('returns a PNG', async () => {
    const png = await cutOutCharacter(await characterPicture(), limits);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.hasAlpha).toBe(true);
  });
});

describe('compositeCharacter', () => {
  it('returns a picture the size of the background with the character standing bottom-centre', async () => {
    const background = await solid(96, 80, '#0000ff');
    const result = await compositeCharacter(await characterPicture(), background, limits);

    expect(result.width).toBe(96);
    expect(result.height).toBe(80);
    const out = await pixels(result.png);
    expect(out.width).toBe(96);
    expect(out.height).toBe(80);

    expect(isBlue(out.at(0, 0))).toBe(true);
    expect(isBlue(out.at(95, 0))).toBe(true);
    expect(isBlue(out.at(0, 79))).toBe(true);
    // Where the character stands: just above the bottom edge, in the middle.
    expect(isRedish(out.at(48, 72))).toBe(true);
    expect(isRedish(out.at(48, 50))).toBe(true);
    // Above its ~75% height there is only sky.
    expect(isBlue(out.at(48, 10))).toBe(true);
  });

  it('scales the silhouette, not the character canvas, to about 75% of the background height', async () => {
    // A small disc with wide margins: the margins must not shrink the figure.
    const character = await characterPicture({ size: 128, radius: 16 });
    const result = await compositeCharacter(character, await solid(240, 200, '#0000ff'), limits);
    const out = await pixels(result.png);

    const redRows = Array.from({ length: 200 }, (_, y) => y).filter((y) => isRedish(out.at(120, y)));
    const top = Math.min(...redRows);
    const bottom = Math.max(...redRows);
    // Clearly-red rows stop a few pixels short of the 150px target where the soft edge blends into blue.
    expect(bottom - top + 1).toBeGreaterThanOrEqual(140);
    expect(bottom - top + 1).toBeLessThanOrEqual(152);
    expect(bottom).toBeGreaterThan(195);
  });

  it('never makes the character wider than the background', async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">
      <rect width="100%" height="100%" fill="${NEAR_WHITE}"/>
      <ellipse cx="32" cy="32" rx="30" ry="10" fill="${DARK_RED}"/></svg>`;
    const wide = await sharp(Buffer.from(svg)).png().toBuffer();
    const result = await compositeCharacter(wide, await solid(40, 120, '#0000ff'), limits);
    const out = await pixels(result.png);

    const redColumns = Array.from({ length: 40 }, (_, x) => x).filter((x) => Array.from({ length: 120 }, (_, y) => y).some((y) => isRedish(out.at(x, y))));
    // Fits the width (so its height is well under 75%) and is centred.
    expect(redColumns.length).toBeGreaterThan(30);
    expect(Math.min(...redColumns) + Math.max(...redColumns)).toBeGreaterThanOrEqual(37);
    expect(Math.min(...redColumns) + Math.max(...redColumns)).toBeLessThanOrEqual(41);
    expect(isBlue(out.at(20, 60))).toBe(true);
  });
});

describe('input validation', () => {
  const small = { maxInputPixels: 64 * 64 };

  it('rejects a character image above maxInputPixels with a readable CompositingError', async () => {
    const big = await solid(80, 80, NEAR_WHITE);
    const error = await cutOutCharacter(big, small).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompositingError);
    expect((error as Error).message).toMatch(/80×80 pixels is above the 4096-pixel limit \(MAX_INPUT_PIXELS\)/);
  });

  it('rejects a background image above maxInputPixels with a CompositingError', async () => {
    const error = await compositeCharacter(await characterPicture(), await solid(80, 80, '#0000ff'), small).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompositingError);
    expect((error as Error).message).toMatch(/Background image of 80×80 pixels/);
  });

  it('rejects bytes that are not an image with a CompositingError', async () => {
    const garbage = Buffer.from('definitely not a PNG, just some bytes');
    await expect(cutOutCharacter(garbage, limits)).rejects.toBeInstanceOf(CompositingError);
    await expect(compositeCharacter(garbage, await solid(64, 64, '#0000ff'), limits)).rejects.toBeInstanceOf(CompositingError);
    await expect(compositeCharacter(await characterPicture(), garbage, limits)).rejects.toThrow(/not a readable image/);
  });
});

describe('compositeOnto with a planned placement', () => {
  /** The red silhouette's column range and lowest row in a composite. */
  async function silhouette(png: Buffer): Promise<{ left: number; right: number; top: number; bottom: number }> {
    const out = await pixels(png);
    const box = { left: out.width, right: -1, top: out.height, bottom: -1 };
    for (let y = 0; y < out.height; y++) {
      for (let x = 0; x < out.width; x++) {
        if (!isRedish(out.at(x, y))) continue;
        box.left = Math.min(box.left, x);
        box.right = Math.max(box.right, x);
        box.top = Math.min(box.top, y);
        box.bottom = Math.max(box.bottom, y);
      }
    }
    return box;
  }

  it('stands the character on the planned side, and smaller and higher up when far', async () => {
    const character = await prepareCharacter(await characterPicture(), limits);
    const background = await solid(200, 100, '#0000ff');
    const at = async (side: CharacterSide, distance: CharacterDistance) =>
      silhouette((await compositeOnto(character, background, placementOf(side, distance), limits)).png);

    const left = await at(CharacterSide.LEFT, CharacterDistance.NEAR);
    const centre = await at(CharacterSide.CENTRE, CharacterDistance.NEAR);
    const right = await at(CharacterSide.RIGHT, CharacterDistance.NEAR);
    expect((left.left + left.right) / 2).toBeLessThan(200 / 3);
    expect(Math.abs((centre.left + centre.right) / 2 - 100)).toBeLessThanOrEqual(2);
    expect((right.left + right.right) / 2).toBeGreaterThan((2 * 200) / 3);
    // Near: feet on the bottom edge, ~75 % of the height.
    expect(left.bottom).toBeGreaterThanOrEqual(97);
    expect(left.bottom - left.top + 1).toBeGreaterThanOrEqual(70);

    const far = await at(CharacterSide.CENTRE, CharacterDistance.FAR);
    expect(far.bottom - far.top + 1).toBeLessThan(50);
    expect(far.bottom).toBeLessThan(92);
  });

  it('keeps a character placed at the side inside the scene', async () => {
    const character = await prepareCharacter(await characterPicture(), limits);
    // A scene so narrow that a left-placed figure centred at 27 % would poke out.
    const box = await silhouette(
      (await compositeOnto(character, await solid(80, 100, '#0000ff'), placementOf(CharacterSide.LEFT, CharacterDistance.NEAR), limits)).png,
    );
    expect(box.left).toBeGreaterThanOrEqual(0);
    expect(box.right).toBeLessThan(80);
    // Pushed against the left edge (its soft fringe aside), not cut off by it.
    expect(box.left).toBeLessThanOrEqual(3);
  });

  it('places the same way as compositeCharacter for centre and near', async () => {
    const picture = await characterPicture();
    const background = await solid(96, 80, '#0000ff');
    const one = await compositeCharacter(picture, background, limits);
    const other = await compositeOnto(await prepareCharacter(picture, limits), background, CENTRE_NEAR, limits);
    expect(one.png.equals(other.png)).toBe(true);
  });
});
