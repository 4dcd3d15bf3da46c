import bidiJs, { type EmbeddingLevels } from 'bidi-js';
import PDFDocument from 'pdfkit';
import type { FontFace, FontFallback } from './book-fonts.js';

/** Points between two lines of a paragraph. */
const LINE_GAP = 2;
/** Points between two paragraphs. */
const PARAGRAPH_GAP = 6;

/** Where and how a block of text is set. */
export interface TextBox {
  x: number;
  y: number;
  width: number;
  /** Points. */
  size: number;
  /** `left` is the start of the line: flush right for a paragraph that starts right-to-left. */
  align: 'left' | 'center';
}

/**
 * The Unicode Bidirectional Algorithm (UAX #9) from bidi-js: embedding levels per UTF-16
 * index of a paragraph, and per line the visual order of those indices. The package is
 * CommonJS exporting its factory itself, while its types declare an ES default export.
 */
const bidi = (bidiJs as unknown as typeof bidiJs.default)();

/** The character fontkit takes a run's script from (its Script.forString): the first that is not Common, Inherited or Unknown. */
const FIRST_SCRIPT_CHARACTER = /[^\p{Script=Common}\p{Script=Inherited}\p{Script=Unknown}]/u;
/** Scripts fontkit shapes right to left, reversing the glyphs of a run in one of them. */
const RTL_SCRIPT = /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;

/** Text handed to fontkit as one piece (pdfkit otherwise shapes word by word, and an RTL piece of several words would keep its words in logical order). */
const WHOLE_RUN: PDFKit.Mixins.TextOptions = { features: [], lineBreak: false };

/** A stretch of a line in one face at one embedding level; `start` and `end` are UTF-16 indices into the paragraph. */
interface Piece {
  face: FontFace;
  level: number;
  start: number;
  end: number;
}

/** Writes paragraphs whose characters may need different fonts: left-to-right ones as runs continued on one line by pdfkit, those with right-to-left text line by line in visual order. */
export class Typesetter {
  private readonly registered = new Set<string>();

  constructor(
    private readonly doc: PDFKit.PDFDocument,
    private readonly fonts: FontFallback,
    private readonly missing: Set<string>,
    /** Shaped widths of words, by face, size and text: a page is measured at several sizes before it is drawn, and shaping dominates the time. Shared with the scratch documents of one book. */
    private readonly widths = new Map<string, number>(),
  ) {}

  write(paragraphs: string[], box: TextBox): void {
    this.doc.y = box.y;
    for (const paragraph of paragraphs) {
      const levels = bidi.getEmbeddingLevels(paragraph, 'auto');
      if (levels.levels.some((level) => level % 2 === 1)) this.writeBidi(paragraph, levels, box);
      else this.writeLeftToRight(paragraph, box);
    }
  }

  /** A paragraph without right-to-left text: pdfkit breaks its lines (UAX #14, so CJK text without spaces breaks too). */
  private writeLeftToRight(paragraph: string, box: TextBox): void {
    const runs = this.fonts.runs(paragraph, this.missing);
    // pdfkit centres each continued run on its own, so lines of several fonts are set flush left.
    const align = runs.length > 1 ? 'left' : box.align;
    // A face whose glyphs do not read back as the text is written word by word, each word in a span with its text as ActualText.
    const parts = runs.flatMap((run) =>
      (run.face.actualText ? (run.text.match(/\s*\S+\s*/g) ?? [run.text]) : [run.text]).map((text) => ({ face: run.face, text })),
    );
    // pdfkit sets each run's baseline its font's ascent below the line's top; one baseline for all (the tallest ascent) keeps a line of several fonts level.
    const baseline = -Math.max(...runs.map((run) => this.fonts.verticalMetrics(run.face).ascent)) * box.size;
    parts.forEach((part, i) => {
      this.use(part.face).fontSize(box.size);
      const options = { width: box.width, align, baseline, lineGap: LINE_GAP, paragraphGap: PARAGRAPH_GAP, continued: i < parts.length - 1 };
      if (part.face.actualText) this.doc.markContent('Span', { actual: part.text });
      if (i === 0) this.doc.text(part.text, box.x, this.doc.y, options);
      else this.doc.text(part.text, options);
      if (part.face.actualText) this.doc.endMarkedContent();
    });
  }

  /**
   * A paragraph with right-to-left text, which pdfkit cannot lay out: broken into lines at
   * spaces here, in logical order, then each line's pieces (one face, one embedding level)
   * drawn left to right in the visual order bidi-js gives. fontkit shapes and reverses an
   * Arabic or Hebrew piece itself; a piece it would lay out the other way than its level
   * says (neutral punctuation at an RTL level, Arabic-Indic digits at an LTR one) is handed
   * to it reversed, brackets mirrored.
   */
  private writeBidi(paragraph: string, levels: EmbeddingLevels, box: TextBox): void {
    const faces = this.facesByIndex(paragraph);
    const base = levels.paragraphs[0]?.level ?? 0;
    const words = [...paragraph.matchAll(/\S+\s*/g)].map((match) => {
      const start = match.index;
      const end = start + match[0].trimEnd().length;
      return {
        start,
        end,
        width: this.width(paragraph, faces, levels, start, end, box.size),
        space: this.width(paragraph, faces, levels, end, start + match[0].length, box.size),
      };
    });
    let first = 0;
    while (first < words.length) {
      let last = first;
      let width = words[first].width;
      while (last + 1 < words.length && width + words[last].space + words[last + 1].width <= box.width) {
        width += words[last].space + words[last + 1].width;
        last++;
      }
      this.bidiLine(paragraph, faces, levels, words[first].start, words[last].end, width, base, box);
      first = last + 1;
    }
    this.doc.y += PARAGRAPH_GAP;
  }

  /** One line, [start, end) of the paragraph without its trailing spaces, `width` points wide. */
  private bidiLine(paragraph: string, faces: FontFace[], levels: EmbeddingLevels, start: number, end: number, width: number, base: number, box: TextBox): void {
    const pieces = visualPieces(paragraph, faces, levels, start, end);
    const metrics = pieces.map((piece) => this.fonts.verticalMetrics(piece.face));
    const ascent = Math.max(...metrics.map((metric) => metric.ascent));
    const lineHeight = (ascent - Math.min(...metrics.map((metric) => metric.descent)) + Math.max(...metrics.map((metric) => metric.lineGap))) * box.size;
    if (this.doc.y + lineHeight > this.doc.page.maxY()) {
      this.doc.continueOnNewPage();
      this.doc.y = this.doc.page.margins.top;
    }
    const top = this.doc.y;
    let x = box.align === 'center' ? box.x + (box.width - width) / 2 : base % 2 === 1 ? box.x + box.width - width : box.x;
    pieces.forEach((piece, i) => {
      const y = top + (ascent - metrics[i].ascent) * box.size;
      this.use(piece.face).fontSize(box.size);
      // A face whose glyphs do not read back as the text is drawn word by word (visual order), each word in a span with its text as ActualText.
      const words = piece.face.actualText ? (paragraph.slice(piece.start, piece.end).match(/\s*\S+\s*|\s+/g) ?? []) : [paragraph.slice(piece.start, piece.end)];
      for (const logical of piece.level % 2 === 1 ? words.reverse() : words) {
        const drawn = drawnText(logical, piece.level);
        if (piece.face.actualText) this.doc.markContent('Span', { actual: logical });
        this.doc.text(drawn, x, y, WHOLE_RUN);
        if (piece.face.actualText) this.doc.endMarkedContent();
        x += this.doc.widthOfString(drawn, WHOLE_RUN);
      }
    });
    this.doc.x = box.x;
    this.doc.y = top + lineHeight + LINE_GAP;
  }

  /** The width in points of [start, end) of the paragraph, its stretches of one face and one level shaped as they are drawn (their order does not change the sum). */
  private width(paragraph: string, faces: FontFace[], levels: EmbeddingLevels, start: number, end: number, size: number): number {
    let sum = 0;
    for (let from = start; from < end; ) {
      let to = from + 1;
      while (to < end && faces[to] === faces[from] && levels.levels[to] === levels.levels[from]) to++;
      const text = paragraph.slice(from, to);
      const key = `${faces[from].name}\u0000${size}\u0000${text}`;
      let width = this.widths.get(key);
      if (width === undefined) {
        width = this.use(faces[from]).fontSize(size).widthOfString(text, WHOLE_RUN);
        this.widths.set(key, width);
      }
      sum += width;
      from = to;
    }
    return sum;
  }

  /** The face of each UTF-16 index of the paragraph (both halves of a surrogate pair get their character's). */
  private facesByIndex(paragraph: string): FontFace[] {
    return this.fonts.runs(paragraph, this.missing).flatMap((run) => Array.from({ length: run.text.length }, () => run.face));
  }

  /** The height the paragraphs take at this size: set on a scratch document as tall as needed, never shown. */
  measure(paragraphs: string[], width: number, size: number): number {
    const scratch = new Typesetter(new PDFDocument({ autoFirstPage: false }), this.fonts, new Set(), this.widths);
    scratch.doc.addPage({ size: [width, 100_000], margin: 0 });
    scratch.write(paragraphs, { x: 0, y: 0, width, size, align: 'left' });
    return scratch.doc.y;
  }

  /** The number, centred across the page `width` with its top at `y` in the bottom margin (the margin is lifted while it is written, so pdfkit does not start a new page). */
  pageNumber(number: number, width: number, y: number): void {
    const bottom = this.doc.page.margins.bottom;
    this.doc.page.margins.bottom = 0;
    const [run] = this.fonts.runs(String(number));
    this.use(run.face).fontSize(9);
    this.doc.text(String(number), 0, y, { width, align: 'center', lineBreak: false });
    this.doc.page.margins.bottom = bottom;
  }

  private use(face: FontFace): PDFKit.PDFDocument {
    if (!this.registered.has(face.name)) {
      this.doc.registerFont(face.name, this.fonts.fontFile(face));
      this.registered.add(face.name);
    }
    return this.doc.font(face.name);
  }
}

/**
 * What to hand pdfkit for text of one embedding level so that it comes out in visual
 * order: fontkit reverses a run itself when its first script-specific character is in
 * an RTL script, so such text goes as it is at an RTL level; text that fontkit lays out
 * the other way than the level says (neutrals at an RTL level, Arabic-Indic digits at an
 * LTR one) goes reversed, brackets mirrored at an RTL level.
 */
function drawnText(logical: string, level: number): string {
  const rtl = level % 2 === 1;
  const fontkitRtl = RTL_SCRIPT.test(FIRST_SCRIPT_CHARACTER.exec(logical)?.[0] ?? '');
  if (rtl === fontkitRtl) return logical;
  return [...logical]
    .reverse()
    .map((character) => (rtl ? (bidi.getMirroredCharacter(character) ?? character) : character))
    .join('');
}

/**
 * [start, end) of a paragraph as the pieces drawn left to right: the indices in the visual
 * order of UAX #9 (rule L2, from bidi-js), cut wherever the face or the level changes or
 * the order jumps. A piece's `start`/`end` are its logical bounds.
 */
function visualPieces(paragraph: string, faces: FontFace[], levels: EmbeddingLevels, start: number, end: number): Piece[] {
  const pieces: Piece[] = [];
  // bidi-js answers for the whole paragraph, only [start, end) reordered.
  for (const index of bidi.getReorderedIndices(paragraph, levels, start, end - 1).slice(start, end)) {
    const level = levels.levels[index];
    const last = pieces.at(-1);
    if (last && last.face === faces[index] && last.level === level && (level % 2 === 1 ? index === last.start - 1 : index === last.end)) {
      if (level % 2 === 1) last.start = index;
      else last.end = index + 1;
    } else pieces.push({ face: faces[index], level, start: index, end: index + 1 });
  }
  return pieces;
}
