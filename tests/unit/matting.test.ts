import { describe, expect, it } from 'vitest';
import { computeMatte } from '../../src/services/images/matting.js';

const BACKDROP = [244, 244, 240] as const;
const FIGURE = [139, 16, 16] as const;

/** A w×h RGBA image of the backdrop colour with the pixels where `inFigure(x, y)` holds painted in `colour`. */
function picture(w: number, h: number, paint: (x: number, y: number) => readonly [number, number, number]): Uint8Array {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      data.set([...paint(x, y), 255], p);
    }
  }
  return data;
}

const alphaAt = (data: Uint8Array, w: number, x: number, y: number) => data[(y * w + x) * 4 + 3];

describe('computeMatte on RGBA bytes', () => {
  it('makes the border-connected backdrop transparent and the figure opaque, and boxes the silhouette', () => {
    const w = 40;
    const h = 40;
    const data = picture(w, h, (x, y) => (x >= 10 && x < 30 && y >= 5 && y < 35 ? FIGURE : BACKDROP));
    const matte = computeMatte({ data, width: w, height: h });
    expect(alphaAt(matte.data, w, 0, 0)).toBe(0);
    expect(alphaAt(matte.data, w, 39, 20)).toBe(0);
    expect(alphaAt(matte.data, w, 20, 20)).toBe(255);
    expect(matte.silhouette).not.toBeNull();
    const box = matte.silhouette!;
    // The figure spans x 10..29, y 5..34; the soft edge may move the box by a pixel, no more.
    expect(Math.abs(box.left - 10)).toBeLessThanOrEqual(1);
    expect(Math.abs(box.top - 5)).toBeLessThanOrEqual(1);
    expect(Math.abs(box.width - 20)).toBeLessThanOrEqual(2);
    expect(Math.abs(box.height - 30)).toBeLessThanOrEqual(2);
    expect(matte.extent!.width).toBeGreaterThanOrEqual(box.width);
  });

  it('keeps a backdrop-coloured area enclosed by the figure (an eye) opaque', () => {
    const w = 40;
    const h = 40;
    const data = picture(w, h, (x, y) => {
      const inFigure = x >= 8 && x < 32 && y >= 8 && y < 32;
      const inEye = x >= 18 && x < 22 && y >= 18 && y < 22;
      return inFigure && !inEye ? FIGURE : BACKDROP;
    });
    const matte = computeMatte({ data, width: w, height: h });
    expect(alphaAt(matte.data, w, 20, 20)).toBe(255);
    expect(alphaAt(matte.data, w, 2, 2)).toBe(0);
  });

  it('finds no silhouette in a picture of backdrop alone', () => {
    const w = 16;
    const h = 16;
    const matte = computeMatte({ data: picture(w, h, () => BACKDROP), width: w, height: h });
    expect(matte.silhouette).toBeNull();
    expect(matte.extent).toBeNull();
  });

  it('leaves its input untouched', () => {
    const w = 16;
    const h = 16;
    const data = picture(w, h, (x) => (x > 8 ? FIGURE : BACKDROP));
    const before = Uint8Array.from(data);
    computeMatte({ data, width: w, height: h });
    expect(data).toEqual(before);
  });
});
