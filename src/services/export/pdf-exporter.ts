import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import type { FontFace, FontFallback } from './book-fonts.js';
import { type BookForExport, paragraphsOf } from './export-book.js';

/** Print sizes a PDF book is laid out for (points: 1/72 inch). A5 = 148 × 210 mm, Letter = 8.5 × 11 in. */
const PDF_PAGE_SIZES = { A5: [419.53, 595.28], LETTER: [612, 792] } as const;
export type PdfPageSize = keyof typeof PDF_PAGE_SIZES;

export interface PdfOptions {
  pageSize: PdfPageSize;
  fonts: FontFallback;
  /** The PDF's CreationDate and ModDate. */
  created: Date;
}

export interface RenderedPdf {
  pdf: Buffer;
  /** Characters no font of the set has (drawn as missing-glyph boxes); empty for Latin, Cyrillic and CJK text. */
  missingCharacters: string[];
}

/** 0.5 in on every side: inside what home printers can print. */
const MARGIN = 36;
const GAP = 14;
const LINE_GAP = 2;
const PARAGRAPH_GAP = 6;
/** Layouts tried in turn until the page's text fits under its picture: [share of the text area the picture may take, font size in points]. */
const LAYOUTS: readonly (readonly [number, number])[] = [
  [0.6, 12],
  [0.5, 12],
  [0.4, 12],
  [0.4, 11],
  [0.4, 10],
  [0.4, 9],
  [0.4, 8],
];

/**
 * A book as a print-ready PDF with pdfkit: a title page, then one PDF page per book page,
 * the picture (scaled to fit, centred) above the text, a page number at the foot. Text is
 * set in the fonts of `options.fonts`, chosen per character and embedded as subsets. When a
 * page's text does not fit under its picture, the picture shrinks to 40 % of the text area,
 * then the type from 12 pt down to 8 pt; text that still does not fit runs on to an extra
 * page. The document info carries the title, and the catalog the language.
 */
export async function renderBookPdf(book: BookForExport, options: PdfOptions): Promise<RenderedPdf> {
  const [width, height] = PDF_PAGE_SIZES[options.pageSize];
  const missing = new Set<string>();
  const doc = new PDFDocument({
    autoFirstPage: false,
    size: [width, height],
    margin: MARGIN,
    lang: book.language,
    displayTitle: true,
    pdfVersion: '1.7',
    info: { Title: book.title, Author: 'Story Agent', Subject: book.prompt, Creator: 'Story Agent', CreationDate: options.created, ModDate: options.created },
  });
  const done = collect(doc);
  const typesetter = new Typesetter(doc, options.fonts, missing);
  const textWidth = width - 2 * MARGIN;
  const textHeight = height - 2 * MARGIN;

  doc.addPage();
  typesetter.write([book.title], { x: MARGIN, y: MARGIN + textHeight * 0.3, width: textWidth, size: 24, align: 'center' });
  doc.moveDown(1);
  typesetter.write([`Written by Story Agent from the prompt “${book.prompt}”`], { x: MARGIN, y: doc.y, width: textWidth, size: 11, align: 'center' });

  const images = await Promise.all(book.pages.map((page) => (page.picture ? printable(page.picture.png) : null)));
  for (const [i, page] of book.pages.entries()) {
    doc.addPage();
    const paragraphs = paragraphsOf(page.text);
    const image = images[i];
    const layout =
      LAYOUTS.find(
        ([share, size]) => pictureHeight(image, textWidth, textHeight * share) + GAP + typesetter.measure(paragraphs, textWidth, size) <= textHeight,
      ) ?? LAYOUTS[LAYOUTS.length - 1];
    let y = MARGIN;
    if (image) {
      const boxHeight = pictureHeight(image, textWidth, textHeight * layout[0]);
      const scale = boxHeight / image.height;
      doc.image(image.jpeg, MARGIN + (textWidth - image.width * scale) / 2, y, { width: image.width * scale, height: boxHeight });
      y += boxHeight + GAP;
    }
    typesetter.write(paragraphs, { x: MARGIN, y, width: textWidth, size: layout[1], align: 'left' });
    typesetter.pageNumber(page.index + 1, width, height);
  }
  doc.end();
  return { pdf: await done, missingCharacters: [...missing] };
}

/** The height a picture takes when fitted into width × maxHeight; 0 without one. */
function pictureHeight(image: { width: number; height: number } | null, width: number, maxHeight: number): number {
  return image ? image.height * Math.min(width / image.width, maxHeight / image.height) : 0;
}

/**
 * The picture as a JPEG (quality 92, no chroma subsampling: no visible loss in print) on
 * white, with its pixel size; null when the bytes are not an image (the page is then text
 * only). pdfkit copies a JPEG into the PDF as it is, while it reads a PNG byte by byte in
 * JavaScript (about 0.3 s for a 512×512 picture) and keeps it lossless, 3–4× larger.
 */
async function printable(png: Buffer): Promise<{ jpeg: Buffer; width: number; height: number } | null> {
  try {
    const { data, info } = await sharp(png)
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 92, chromaSubsampling: '4:4:4' })
      .toBuffer({ resolveWithObject: true });
    return { jpeg: data, width: info.width, height: info.height };
  } catch {
    return null;
  }
}

function collect(doc: PDFKit.PDFDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
}

interface TextBox {
  x: number;
  y: number;
  width: number;
  /** Points. */
  size: number;
  align: 'left' | 'center';
}

/** Writes paragraphs whose characters may need different fonts, as runs continued on one line. */
class Typesetter {
  private readonly registered = new Set<string>();

  constructor(
    private readonly doc: PDFKit.PDFDocument,
    private readonly fonts: FontFallback,
    private readonly missing: Set<string>,
  ) {}

  write(paragraphs: string[], box: TextBox): void {
    this.doc.y = box.y;
    for (const paragraph of paragraphs) {
      const runs = this.fonts.runs(paragraph, this.missing);
      // pdfkit centres each continued run on its own, so lines of several fonts are set flush left.
      const align = runs.length > 1 ? 'left' : box.align;
      runs.forEach((run, i) => {
        this.use(run.face).fontSize(box.size);
        const options = { width: box.width, align, lineGap: LINE_GAP, paragraphGap: PARAGRAPH_GAP, continued: i < runs.length - 1 };
        if (i === 0) this.doc.text(run.text, box.x, this.doc.y, options);
        else this.doc.text(run.text, options);
      });
    }
  }

  /** The height the paragraphs take at this size: set on a scratch document as tall as needed, never shown. */
  measure(paragraphs: string[], width: number, size: number): number {
    const scratch = new Typesetter(new PDFDocument({ autoFirstPage: false }), this.fonts, new Set());
    scratch.doc.addPage({ size: [width, 100_000], margin: 0 });
    scratch.write(paragraphs, { x: 0, y: 0, width, size, align: 'left' });
    return scratch.doc.y;
  }

  /** The number, centred in the bottom margin (the margin is lifted while it is written, so pdfkit does not start a new page). */
  pageNumber(number: number, width: number, height: number): void {
    const bottom = this.doc.page.margins.bottom;
    this.doc.page.margins.bottom = 0;
    const [run] = this.fonts.runs(String(number));
    this.use(run.face).fontSize(9);
    this.doc.text(String(number), 0, height - MARGIN / 2 - 6, { width, align: 'center', lineBreak: false });
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
