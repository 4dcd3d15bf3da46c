import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import type { FontFallback } from './book-fonts.js';
import { type BookForExport, paragraphsOf } from './export-book.js';
import { Typesetter } from './pdf-typesetter.js';

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
  /** Characters no font of the set has (drawn as missing-glyph boxes); empty for Latin, Cyrillic, CJK, Hangul, Arabic-script, Hebrew and Devanagari text. */
  missingCharacters: string[];
}

/** 0.5 in on every side: inside what home printers can print. */
const MARGIN = 36;
const GAP = 14;
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
 * set in the fonts of `options.fonts`, chosen per character and embedded as subsets; a
 * paragraph with right-to-left text (Arabic, Hebrew) is laid out in visual order by the
 * Unicode Bidirectional Algorithm, and one that starts right-to-left is set flush right. When a
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
    typesetter.pageNumber(page.index + 1, width, height - MARGIN / 2 - 6);
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
