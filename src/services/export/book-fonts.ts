import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as fontkit from 'fontkit';
import { woffToSfnt } from './woff.js';

/**
 * The fonts a PDF book is set in: Noto Sans SC (SIL Open Font License 1.1) from
 * @fontsource/noto-sans-sc, regular weight. Fontsource ships it cut into subsets:
 * Latin, Latin Extended, Cyrillic and Vietnamese, one file with the common
 * Simplified Chinese characters and Japanese kana, and ~100 slices of the rest of
 * the font, each with the Unicode ranges it covers (unicode.json, as in the CSS
 * `unicode-range`). A character is set in the first subset, in that order, whose
 * range holds it and whose glyph table really has it, so Latin, Cyrillic and CJK
 * text mix on one line with each script in a font that draws it.
 */

const WEIGHT = 400;
/** Named subsets first (few files, most text), then the numbered slices. */
const NAMED_SUBSETS = ['latin', 'latin-ext', 'cyrillic', 'vietnamese'];
/** Fontsource's subset for the ~8000 commonest Simplified Chinese characters and kana; it has no range list of its own. */
const COMMON_CJK_SUBSET = 'chinese-simplified';

/** One font file of the set. `ranges` null: any code point may be in it (its glyph table decides). */
export interface FontFace {
  /** The name a PDF writer registers the font under. */
  name: string;
  file: string;
  ranges: readonly (readonly [number, number])[] | null;
}

/** A run of text that one face draws. */
export interface FontRun {
  face: FontFace;
  text: string;
}

/** Parses a CSS `unicode-range` value (`U+41-5a,U+e9`) into inclusive [first, last] code point pairs. */
export function parseUnicodeRange(value: string): [number, number][] {
  return value
    .split(',')
    .map((part) => part.trim().replace(/^U\+/i, ''))
    .filter(Boolean)
    .map((part) => {
      const [first, last = first] = part.split('-');
      return [Number.parseInt(first, 16), Number.parseInt(last, 16)] as [number, number];
    });
}

/** The faces of the set, in the order they are tried. Throws when the font package is not installed. */
export function notoSansScFaces(): FontFace[] {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@fontsource/noto-sans-sc/package.json'));
  const ranges = JSON.parse(fs.readFileSync(path.join(dir, 'unicode.json'), 'utf8')) as Record<string, string>;
  const file = (subset: string) => path.join(dir, 'files', `noto-sans-sc-${subset}-${WEIGHT}-normal.woff`);
  const numbered = Object.keys(ranges)
    .filter((key) => /^\[\d+\]$/.test(key))
    .sort((a, b) => Number(a.slice(1, -1)) - Number(b.slice(1, -1)));
  return [
    ...NAMED_SUBSETS.filter((subset) => subset in ranges).map((subset) => ({
      name: `NotoSansSC-${subset}`,
      file: file(subset),
      ranges: parseUnicodeRange(ranges[subset]),
    })),
    { name: `NotoSansSC-${COMMON_CJK_SUBSET}`, file: file(COMMON_CJK_SUBSET), ranges: null },
    ...numbered.map((key) => {
      const slice = key.slice(1, -1);
      return { name: `NotoSansSC-${slice}`, file: file(slice), ranges: parseUnicodeRange(ranges[key]) };
    }),
  ];
}

/** Code points that belong to whatever run they are in (spaces, joiners, line breaks) rather than picking a font of their own. */
function isNeutral(codePoint: number): boolean {
  return codePoint === 0x20 || codePoint === 0x0a || codePoint === 0xa0 || codePoint === 0x200b || codePoint === 0x200d;
}

/**
 * Picks, per character, the first face that has a glyph for it. Font files are
 * read once, when a character first needs them; one instance serves every export.
 */
export class FontFallback {
  private readonly loaded = new Map<string, { font: fontkit.Font; sfnt: Buffer }>();
  private readonly chosen = new Map<number, FontFace | null>();

  constructor(private readonly faces: readonly FontFace[]) {
    if (faces.length === 0) throw new Error('FontFallback needs at least one font');
  }

  /** The face for a code point; null when no face of the set has it (it is then drawn in the first face, as a missing-glyph box). */
  faceFor(codePoint: number): FontFace | null {
    let face = this.chosen.get(codePoint);
    if (face === undefined) {
      face = this.faces.find((candidate) => covers(candidate, codePoint) && this.open(candidate).font.hasGlyphForCodePoint(codePoint)) ?? null;
      this.chosen.set(codePoint, face);
    }
    return face;
  }

  /**
   * Splits text into runs of one face each, in order; spaces stay with the run
   * they are in. `missing` collects the characters no face has.
   */
  runs(text: string, missing?: Set<string>): FontRun[] {
    const runs: FontRun[] = [];
    for (const character of text) {
      const codePoint = character.codePointAt(0) ?? 0;
      const last = runs.at(-1);
      if (last && isNeutral(codePoint)) {
        last.text += character;
        continue;
      }
      let face = this.faceFor(codePoint);
      if (!face) {
        missing?.add(character);
        face = this.faces[0];
      }
      if (last?.face === face) last.text += character;
      else runs.push({ face, text: character });
    }
    return runs;
  }

  /** The face's font file as plain TrueType, for a PDF writer to embed from. */
  fontFile(face: FontFace): Buffer {
    return this.open(face).sfnt;
  }

  private open(face: FontFace): { font: fontkit.Font; sfnt: Buffer } {
    let loaded = this.loaded.get(face.file);
    if (!loaded) {
      const sfnt = woffToSfnt(fs.readFileSync(face.file));
      const font = fontkit.create(sfnt);
      if (!('hasGlyphForCodePoint' in font)) throw new Error(`${face.file} is a font collection, not one font`);
      loaded = { font, sfnt };
      this.loaded.set(face.file, loaded);
    }
    return loaded;
  }
}

function covers(face: FontFace, codePoint: number): boolean {
  return face.ranges === null || face.ranges.some(([first, last]) => codePoint >= first && codePoint <= last);
}
