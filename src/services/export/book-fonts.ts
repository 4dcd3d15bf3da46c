import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as fontkit from 'fontkit';
import { woffToSfnt } from './woff.js';

/**
 * The fonts a PDF book is set in, regular weight, all under the SIL Open Font License 1.1:
 * Noto Sans SC from @fontsource/noto-sans-sc (Latin, Cyrillic, Vietnamese, Chinese,
 * Japanese kana), then Nanum Gothic from @fontsource/nanum-gothic for the Hangul
 * syllables Noto Sans SC lacks, then Vazirmatn (Arabic, Persian, Urdu), Noto Sans Hebrew
 * and Noto Sans Devanagari (Hindi, Marathi, Nepali) from their @fontsource packages.
 * Fontsource ships each font cut into subsets: named ones (Latin, Cyrillic, Arabic,
 * ...) and, for the CJK fonts, one file with the bulk of the script and ~100
 * numbered slices of the whole font, each with the Unicode ranges it covers
 * (unicode.json, as in the CSS `unicode-range`). A character is set in the first subset,
 * in that order, whose range holds it and whose glyph table really has it, so scripts mix
 * on one line with each in a font that draws it; combining marks and joiners stay in the
 * run they follow, so a word of one script is shaped as a whole (joined Arabic letters,
 * Devanagari conjuncts and vowel signs).
 */

const WEIGHT = 400;
const require = createRequire(import.meta.url);

/** One Fontsource package and how its subsets are tried. */
interface FontsourceFont {
  /** The path of the package's package.json; throws when the package is not installed. */
  packageJson: () => string;
  /** File name prefix: `files/<prefix>-<subset>-<weight>-normal.woff`. */
  filePrefix: string;
  /** Prefix of the names the faces are registered under in a PDF. */
  faceName: string;
  /** Named subsets tried first (few files, most text). */
  namedSubsets: readonly string[];
  /** The subset of the script's commonest characters; it has no range list of its own. Null: the font has none (nor numbered slices). */
  commonSubset: string | null;
  /**
   * Whether its shaped glyphs cannot be read back as the text: Devanagari shaping draws a
   * vowel sign before its consonant (and a reph after it), while a PDF maps each glyph to
   * one text in drawing order. A PDF then carries each word's text beside its glyphs
   * (ActualText).
   */
  actualText: boolean;
}

const NOTO_SANS_SC: FontsourceFont = {
  packageJson: () => require.resolve('@fontsource/noto-sans-sc/package.json'),
  filePrefix: 'noto-sans-sc',
  faceName: 'NotoSansSC',
  namedSubsets: ['latin', 'latin-ext', 'cyrillic', 'vietnamese'],
  /** ~8000 Simplified Chinese characters and kana. */
  commonSubset: 'chinese-simplified',
  actualText: false,
};

/** Its Latin subset is left out: Noto Sans SC's comes first and has every character of it. */
const NANUM_GOTHIC: FontsourceFont = {
  packageJson: () => require.resolve('@fontsource/nanum-gothic/package.json'),
  filePrefix: 'nanum-gothic',
  faceName: 'NanumGothic',
  namedSubsets: [],
  /** All 11 172 Hangul syllables, in one 0.6 MB file. */
  commonSubset: 'korean',
  actualText: false,
};

/**
 * Arabic, Persian and Urdu letters with their joined forms, ZWNJ, Arabic-Indic and
 * Persian digits. Vazirmatn rather than Noto Sans Arabic: Noto draws ب ت ث ن ي in one
 * dotless skeleton plus dot glyphs, so the PDF's one text per glyph read them back as one
 * another, while Vazirmatn has a glyph per letter form. Its Latin subsets are left out.
 */
const VAZIRMATN: FontsourceFont = {
  packageJson: () => require.resolve('@fontsource/vazirmatn/package.json'),
  filePrefix: 'vazirmatn',
  faceName: 'Vazirmatn',
  namedSubsets: ['arabic'],
  commonSubset: null,
  actualText: false,
};

/** The Hebrew alphabet with its points (niqqud) and the sheqel sign. */
const NOTO_SANS_HEBREW: FontsourceFont = {
  packageJson: () => require.resolve('@fontsource/noto-sans-hebrew/package.json'),
  filePrefix: 'noto-sans-hebrew',
  faceName: 'NotoSansHebrew',
  namedSubsets: ['hebrew'],
  commonSubset: null,
  actualText: false,
};

/** Devanagari with its conjuncts and vowel signs, the danda and the rupee sign. */
const NOTO_SANS_DEVANAGARI: FontsourceFont = {
  packageJson: () => require.resolve('@fontsource/noto-sans-devanagari/package.json'),
  filePrefix: 'noto-sans-devanagari',
  faceName: 'NotoSansDevanagari',
  namedSubsets: ['devanagari'],
  commonSubset: null,
  actualText: true,
};

/** One font file of the set. `ranges` null: any code point may be in it (its glyph table decides). */
export interface FontFace {
  /** The name a PDF writer registers the font under. */
  name: string;
  file: string;
  ranges: readonly (readonly [number, number])[] | null;
  /** See FontsourceFont.actualText. */
  actualText: boolean;
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

/** The faces of the book's fonts, in the order they are tried. Throws when a font package is not installed. */
export function bookFaces(): FontFace[] {
  return [NOTO_SANS_SC, NANUM_GOTHIC, VAZIRMATN, NOTO_SANS_HEBREW, NOTO_SANS_DEVANAGARI].flatMap(fontsourceFaces);
}

/** One Fontsource font's faces: its named subsets, its common subset, then its numbered slices in order. */
function fontsourceFaces(font: FontsourceFont): FontFace[] {
  const dir = path.dirname(font.packageJson());
  const ranges = JSON.parse(fs.readFileSync(path.join(dir, 'unicode.json'), 'utf8')) as Record<string, string>;
  const file = (subset: string) => path.join(dir, 'files', `${font.filePrefix}-${subset}-${WEIGHT}-normal.woff`);
  const numbered = Object.keys(ranges)
    .filter((key) => /^\[\d+\]$/.test(key))
    .sort((a, b) => Number(a.slice(1, -1)) - Number(b.slice(1, -1)));
  const { actualText } = font;
  return [
    ...font.namedSubsets
      .filter((subset) => subset in ranges)
      .map((subset) => ({
        name: `${font.faceName}-${subset}`,
        file: file(subset),
        ranges: parseUnicodeRange(ranges[subset]),
        actualText,
      })),
    ...(font.commonSubset ? [{ name: `${font.faceName}-${font.commonSubset}`, file: file(font.commonSubset), ranges: null, actualText }] : []),
    ...numbered.map((key) => {
      const slice = key.slice(1, -1);
      return { name: `${font.faceName}-${slice}`, file: file(slice), ranges: parseUnicodeRange(ranges[key]), actualText };
    }),
  ];
}

/** Code points that belong to whatever run they are in (spaces, joiners, line breaks) rather than picking a font of their own. */
function isNeutral(codePoint: number): boolean {
  return codePoint === 0x20 || codePoint === 0x0a || codePoint === 0xa0 || codePoint === 0x200b || codePoint === 0x200c || codePoint === 0x200d;
}

/** Combining marks (Arabic harakat, Hebrew points, Devanagari vowel signs and virama): shaped with the letter before them. */
const MARK = /^\p{M}$/u;

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
   * Splits text into runs of one face each, in order; spaces and joiners stay with the run
   * they are in, and a combining mark with the letter before it where that face has the
   * mark, since a shaper needs the whole word in one font. `missing` collects the
   * characters no face has.
   */
  runs(text: string, missing?: Set<string>): FontRun[] {
    const runs: FontRun[] = [];
    for (const character of text) {
      const codePoint = character.codePointAt(0) ?? 0;
      const last = runs.at(-1);
      if (last && (isNeutral(codePoint) || (MARK.test(character) && this.open(last.face).font.hasGlyphForCodePoint(codePoint)))) {
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

  /**
   * The face's vertical metrics in ems (fractions of the type size): how far it reaches
   * above the baseline (ascent, positive), below it (descent, negative), and the gap it
   * asks for between lines; a line of several faces sets their baselines level with these.
   */
  verticalMetrics(face: FontFace): { ascent: number; descent: number; lineGap: number } {
    const { font } = this.open(face);
    return { ascent: font.ascent / font.unitsPerEm, descent: font.descent / font.unitsPerEm, lineGap: font.lineGap / font.unitsPerEm };
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
