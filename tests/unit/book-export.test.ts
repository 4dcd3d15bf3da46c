import { randomUUID } from 'node:crypto';
import pino from 'pino';
import sharp from 'sharp';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GenerationKind, GenerationStatus, ImageType } from '../../src/entities/index.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import type { MediaStore } from '../../src/ports/media-store.js';
import { FontFallback, bookFaces, parseUnicodeRange } from '../../src/services/export/book-fonts.js';
import { BookExportService } from '../../src/services/export/book-export-service.js';
import { InThreadBookRenderer } from '../../src/services/export/in-thread-book-renderer.js';
import { RenderedBookCache } from '../../src/services/export/rendered-book-cache.js';
import type { BookRenderer, BookRenderJob, RenderedBookFile } from '../../src/ports/book-renderer.js';
import { renderBookEpub } from '../../src/services/export/epub-exporter.js';
import { ExportLinks } from '../../src/services/export/export-links.js';
import { MediaUrlSigner } from '../../src/services/auth/media-url-signer.js';
import { type BookForExport, bookDirection, bookLanguage } from '../../src/services/export/export-book.js';
import { renderBookHtml } from '../../src/services/export/html-exporter.js';
import { renderBookPdf } from '../../src/services/export/pdf-exporter.js';
import { escapeXml } from '../../src/services/export/xml-text.js';
import { attachmentDisposition } from '../../src/http/content-disposition.js';
import { pdfFonts, pdfInfo, pdfPageImage, pdfPageTexts, readHtmlBook, readZip, runEpubcheck, withoutWhitespace } from '../support/document-tools.js';
import { epubcheck, poppler, skipWithoutTool, toolAvailable } from '../support/environment.js';
import { InMemoryRepositories } from '../support/in-memory-repositories.js';

/** Pages in four scripts: what a reader anywhere may have asked for. */
const TEXTS = [
  'The fox counted the stars one by one.\n\nThe night was still, and the moon listened.',
  'Лиса считала звёзды одну за другой.\nНочь была тихой, и луна слушала.',
  '狐狸一颗一颗地数星星。夜晚很安静，月亮在听。きつねは星を数えました。',
  '여우는 별을 하나씩 세었어요. 밤은 고요했고 달은 귀를 기울였어요.',
];
const TITLE = 'The Fox & the Stars — Лиса и 星星';
const STORY_ID = '6f1c2b9e-3d4a-4b5c-8d7e-9f0a1b2c3d4e';
const MODIFIED = new Date('2026-03-04T05:06:07.890Z');
/** pdfinfo's page sizes, in points. */
const A5 = '419.53 x 595.28 pts';
const LETTER = '612 x 792 pts (letter)';

async function picture(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(512 * 512 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * seed + (i >> 9)) % 251;
  return sharp(pixels, { raw: { width: 512, height: 512, channels: 3 } })
    .png()
    .toBuffer();
}

async function book(options: { pictures: boolean }): Promise<BookForExport> {
  return {
    id: STORY_ID,
    title: TITLE,
    prompt: 'a fox who counts the stars',
    style: 'watercolor',
    createdAt: new Date('2026-01-02T03:04:05Z'),
    language: 'en',
    pages: await Promise.all(
      TEXTS.map(async (text, index) => ({
        index,
        text,
        picture: options.pictures ? { png: await picture(index + 3), width: 512, height: 512, alt: `Scene ${index + 1}: the fox <and> "stars"` } : null,
      })),
    ),
  };
}

const fonts = new FontFallback(bookFaces());

describe('HTML export', () => {
  it('holds the title and every page, pictures as data: URIs, and fetches nothing', async () => {
    const html = renderBookHtml(await book({ pictures: true })).toString('utf8');
    expect(html).toMatch(/^<!doctype html>\n<html lang="en" dir="ltr">/);
    expect(html).toContain('<title>The Fox &amp; the Stars — Лиса и 星星</title>');
    for (const text of TEXTS) for (const line of text.split(/\n+/)) expect(html).toContain(`<p dir="auto">${line}</p>`);
    expect(html.match(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/g)).toHaveLength(TEXTS.length);
    expect(html).toContain('alt="Scene 1: the fox &lt;and&gt; &quot;stars&quot;"');
    expect(html).not.toMatch(/(src|href)="(https?:|\/\/|\/)/);
  });

  it('parses without an error into one page section per page, each with its picture and its paragraphs', async () => {
    const illustrated = await book({ pictures: true });
    const { errors, pages } = readHtmlBook(renderBookHtml(illustrated));
    expect(errors).toEqual([]);
    expect(pages).toEqual(
      illustrated.pages.map((page) => ({
        id: `page-${page.index + 1}`,
        pictures: [`data:image/png;base64,${page.picture!.png.toString('base64')}`],
        paragraphs: page.text.split(/\n+/),
      })),
    );
  });

  it('sets a page without a picture as text only', async () => {
    const withOne = await book({ pictures: true });
    withOne.pages[1].picture = null;
    const html = renderBookHtml(withOne).toString('utf8');
    expect(html.match(/<img /g)).toHaveLength(TEXTS.length - 1);
    const page2 = html.slice(html.indexOf('id="page-2"'), html.indexOf('id="page-3"'));
    expect(page2).not.toContain('<img');
    expect(page2).toContain('<p dir="auto">Лиса считала звёзды одну за другой.</p>');
  });
});

describe('EPUB export', () => {
  let available = false;
  beforeAll(() => {
    available = toolAvailable(epubcheck);
  });
  beforeEach((context) => skipWithoutTool(epubcheck, context));

  it.for([{ pictures: true }, { pictures: false }])(
    'passes epubcheck with no error and no warning (pictures: $pictures)',
    { timeout: 180_000 },
    async (options) => {
      expect(available).toBe(true);
      const report = await runEpubcheck(await renderBookEpub(await book(options), MODIFIED));
      expect({ fatals: report.fatals, errors: report.errors, warnings: report.warnings }, report.output).toEqual({ fatals: 0, errors: 0, warnings: 0 });
    },
  );
});

describe('the EPUB container', () => {
  it('stores mimetype first, uncompressed, and has the cover, one document per page, the nav and the metadata', async () => {
    const entries = readZip(await renderBookEpub(await book({ pictures: true }), MODIFIED));
    expect(entries[0]).toMatchObject({ name: 'mimetype', method: 0, localExtraLength: 0 });
    expect(entries[0].data.toString('ascii')).toBe('application/epub+zip');
    const names = entries.map((entry) => entry.name);
    expect(names).toEqual(expect.arrayContaining(['META-INF/container.xml', 'OEBPS/content.opf', 'OEBPS/nav.xhtml', 'OEBPS/title.xhtml']));
    expect(names.filter((name) => /^OEBPS\/page-\d\d\.xhtml$/.test(name))).toEqual([
      'OEBPS/page-01.xhtml',
      'OEBPS/page-02.xhtml',
      'OEBPS/page-03.xhtml',
      'OEBPS/page-04.xhtml',
    ]);
    const opf = entries.find((entry) => entry.name === 'OEBPS/content.opf')!.data.toString('utf8');
    expect(opf).toContain(`<dc:identifier id="book-id">urn:uuid:${STORY_ID}</dc:identifier>`);
    expect(opf).toContain('<dc:title>The Fox &amp; the Stars — Лиса и 星星</dc:title>');
    expect(opf).toContain('<dc:language>en</dc:language>');
    expect(opf).toContain('<meta property="dcterms:modified">2026-03-04T05:06:07Z</meta>');
    expect(opf).toContain('<item id="image-01" href="images/page-01.png" media-type="image/png" properties="cover-image"/>');
    const page3 = entries.find((entry) => entry.name === 'OEBPS/page-03.xhtml')!.data.toString('utf8');
    expect(page3).toContain(`<p dir="auto">${TEXTS[2]}</p>`);
    expect(page3).toContain('<img src="images/page-03.png"');
    const png = entries.find((entry) => entry.name === 'OEBPS/images/page-02.png')!.data;
    expect((await sharp(png).metadata()).width).toBe(512);
  });
});

describe('PDF export', () => {
  let available = false;
  beforeAll(() => {
    available = toolAvailable(poppler);
  });
  beforeEach((context) => skipWithoutTool(poppler, context));

  it.for([
    { pageSize: 'A5', size: A5, pictures: true },
    { pageSize: 'LETTER', size: LETTER, pictures: true },
    { pageSize: 'A5', size: A5, pictures: false },
  ] as const)(
    'is one $pageSize page per book page after a title page, text extractable, fonts embedded (pictures: $pictures)',
    { timeout: 30_000 },
    async ({ pageSize, size, pictures }) => {
      expect(available).toBe(true);
      const { pdf, missingCharacters } = await renderBookPdf(await book({ pictures }), { pageSize, fonts, created: MODIFIED });
      expect(missingCharacters).toEqual([]);
      const info = await pdfInfo(pdf);
      expect(info).toMatchObject({ Pages: String(TEXTS.length + 1), 'Page size': size, Title: TITLE, Author: 'Story Agent' });

      const pages = await pdfPageTexts(pdf);
      expect(pages).toHaveLength(TEXTS.length + 1);
      expect(withoutWhitespace(pages[0])).toContain(withoutWhitespace(TITLE));
      TEXTS.forEach((text, index) => {
        expect(withoutWhitespace(pages[index + 1])).toContain(withoutWhitespace(text));
      });

      const used = await pdfFonts(pdf);
      expect(used.length).toBeGreaterThanOrEqual(3);
      expect(used.filter((font) => !font.embedded)).toEqual([]);
    },
  );

  it('draws the text: ink on every text-only page, in every script (pdftotext alone would pass invisible glyphs)', { timeout: 30_000 }, async () => {
    expect(available).toBe(true);
    const { pdf } = await renderBookPdf(await book({ pictures: false }), { pageSize: 'A5', fonts, created: MODIFIED });
    for (const [index, text] of TEXTS.entries()) {
      const { data, info } = await sharp(await pdfPageImage(pdf, index + 2))
        .greyscale()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const ink = data.filter((value) => value < 128).length / (info.width * info.height);
      // Two lines of 12 pt type darken about 0.4 % of an A5 page at 50 dpi; glyphs without outlines leave only the page number (~0.01 %).
      expect(ink, `page ${index + 1}: ${text}`).toBeGreaterThan(0.001);
    }
  });

  it('shrinks a long page to keep it on one sheet', { timeout: 30_000 }, async () => {
    expect(available).toBe(true);
    const long = await book({ pictures: true });
    long.pages[0].text = Array.from({ length: 14 }, (_, i) => `Sentence ${i + 1} of the long page tells a little more about the fox and the stars.`).join(' ');
    const { pdf } = await renderBookPdf(long, { pageSize: 'A5', fonts, created: MODIFIED });
    expect((await pdfInfo(pdf)).Pages).toBe(String(TEXTS.length + 1));
    expect(withoutWhitespace((await pdfPageTexts(pdf))[1])).toContain(withoutWhitespace(long.pages[0].text));
  });
});

/**
 * One-page books in the scripts that run right to left or are shaped into conjuncts. The
 * Arabic avoids lam-alef ligatures and vowel marks: poppler (22.12) reads a ligature's two
 * letters back swapped and sets a mark apart, while the glyphs are right.
 */
const RTL_AND_INDIC = {
  ar: {
    title: 'الثعلب والنجوم',
    text: 'عد الثعلب النجوم واحدة بعد أخرى في السماء.\nكان القمر يستمع إلى الثعلب وهو يعد ١٢٣ نجمة (Fox) في 2024.',
  },
  he: { title: 'השועל והכוכבים', text: 'השועל ספר את הכוכבים אחד אחד.\nהלילה היה שקט, והירח הקשיב ל-Fox בשנת 2024.' },
  hi: { title: 'लोमड़ी और तारे', text: 'लोमड़ी ने एक-एक करके तारे गिने।\nरात शांत थी, और चाँद सुन रहा था। क्षत्रिय कृष्ण प्रार्थना' },
} as const;

function scriptBook(language: keyof typeof RTL_AND_INDIC | 'en', text: string, title = text): BookForExport {
  return {
    id: STORY_ID,
    title,
    prompt: 'a fox',
    style: null,
    createdAt: new Date('2026-01-02T03:04:05Z'),
    language,
    pages: [{ index: 0, text, picture: null }],
  };
}

/** The words (letters and digits) of a text, in order: pdftotext rebuilds RTL lines with bidi marks (U+202A–U+202E) and moves punctuation about. */
function wordsOf(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+/gu) ?? [];
}

describe('HTML and EPUB in a right-to-left language', () => {
  it('mark the HTML document rtl with its language, the title and every paragraph dir="auto"', () => {
    const { ar } = RTL_AND_INDIC;
    const html = renderBookHtml(scriptBook('ar', ar.text, ar.title)).toString('utf8');
    expect(html).toMatch(/^<!doctype html>\n<html lang="ar" dir="rtl">/);
    expect(html).toContain(`<h1 dir="auto">${ar.title}</h1>`);
    for (const line of ar.text.split('\n')) expect(html).toContain(`<p dir="auto">${line}</p>`);
    expect(readHtmlBook(Buffer.from(html)).errors).toEqual([]);
  });

  it('give an Arabic EPUB rtl page progression and rtl documents; an English one neither', async () => {
    const { ar } = RTL_AND_INDIC;
    const entries = readZip(await renderBookEpub(scriptBook('ar', ar.text, ar.title), MODIFIED));
    const text = (name: string) => entries.find((entry) => entry.name === name)!.data.toString('utf8');
    expect(text('OEBPS/content.opf')).toContain('<spine page-progression-direction="rtl">');
    expect(text('OEBPS/content.opf')).toContain('<dc:language>ar</dc:language>');
    expect(text('OEBPS/page-01.xhtml')).toContain('xml:lang="ar" lang="ar" dir="rtl">');
    expect(text('OEBPS/page-01.xhtml')).toContain(`<p dir="auto">${ar.text.split('\n')[0]}</p>`);
    expect(text('OEBPS/title.xhtml')).toContain(`<h1 dir="auto">${ar.title}</h1>`);
    const english = readZip(await renderBookEpub(scriptBook('en', 'The fox.'), MODIFIED));
    const opf = english.find((entry) => entry.name === 'OEBPS/content.opf')!.data.toString('utf8');
    expect(opf).toContain('<spine>');
    expect(opf).not.toContain('page-progression-direction');
  });

  it('passes epubcheck with no error and no warning for an Arabic book', { timeout: 180_000 }, async (context) => {
    skipWithoutTool(epubcheck, context);
    const { ar } = RTL_AND_INDIC;
    const report = await runEpubcheck(await renderBookEpub(scriptBook('ar', ar.text, ar.title), MODIFIED));
    expect({ fatals: report.fatals, errors: report.errors, warnings: report.warnings }, report.output).toEqual({ fatals: 0, errors: 0, warnings: 0 });
  });
});

describe('PDF export in Arabic, Hebrew and Hindi', () => {
  beforeEach((context) => skipWithoutTool(poppler, context));

  it.for([
    { language: 'ar', font: 'Vazirmatn' },
    { language: 'he', font: 'NotoSansHebrew' },
  ] as const)(
    '$language: every glyph in the book, $font embedded, and pdftotext reads the words back in logical order',
    { timeout: 30_000 },
    async ({ language, font }) => {
      const { title, text } = RTL_AND_INDIC[language];
      const { pdf, missingCharacters } = await renderBookPdf(scriptBook(language, text, title), { pageSize: 'A5', fonts, created: MODIFIED });
      expect(missingCharacters).toEqual([]);
      const used = await pdfFonts(pdf);
      expect(used.filter((candidate) => candidate.name.endsWith(`+${font}-Regular`))).toEqual([expect.objectContaining({ embedded: true })]);
      expect(used.filter((candidate) => !candidate.embedded)).toEqual([]);
      // pdftotext rebuilds logical order from where the glyphs stand: drawn in logical order instead, the words of each line would come back reversed.
      const pages = await pdfPageTexts(pdf);
      expect(wordsOf(pages[0])).toEqual([...wordsOf(title), ...wordsOf('Written by Story Agent from the prompt “a fox”')]);
      expect(wordsOf(pages[1])).toEqual([...wordsOf(text), '1']);
    },
  );

  it('hi: every glyph in the book, Noto Sans Devanagari embedded, and the words read back whole although vowel signs are drawn before their consonant', {
    timeout: 30_000,
  }, async () => {
    const { title, text } = RTL_AND_INDIC.hi;
    const { pdf, missingCharacters } = await renderBookPdf(scriptBook('hi', text, title), { pageSize: 'A5', fonts, created: MODIFIED });
    expect(missingCharacters).toEqual([]);
    const used = await pdfFonts(pdf);
    expect(used.filter((candidate) => candidate.name.endsWith('+NotoSansDevanagari-Regular'))).toEqual([expect.objectContaining({ embedded: true })]);
    // Each word carries its text as ActualText; poppler places such spans by the graphics state at their end, outside pdfkit's q…Q, so only -raw (drawing order) keeps them in line.
    const pages = await pdfPageTexts(pdf, { raw: true });
    expect(withoutWhitespace(pages[0])).toBe(withoutWhitespace(`${title}Written by Story Agent from the prompt “a fox”`));
    expect(withoutWhitespace(pages[1])).toBe(withoutWhitespace(`${text}1`));
  });

  it('shapes words: joined Arabic letters and a Devanagari conjunct take less room than the same letters set one by one', { timeout: 60_000 }, async () => {
    const inkWidth = async (text: string) => {
      const { pdf } = await renderBookPdf(scriptBook('en', text, 'Title'), { pageSize: 'A5', fonts, created: MODIFIED });
      const { data, info } = await sharp(await pdfPageImage(pdf, 2, 300))
        .greyscale()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const inked = Array.from({ length: info.width }, (_, x) => x).filter((x) =>
        Array.from({ length: Math.floor(info.height / 4) }, (_, y) => data[y * info.width + x]).some((value) => value < 128),
      );
      return inked.at(-1)! - inked[0];
    };
    const apart = async (letters: string[]) => (await Promise.all(letters.map(inkWidth))).reduce((sum, width) => sum + width, 0);
    // Isolated seens each end in a wide tail, joined ones do not; क ् ष alone are three glyphs, क्ष one. Missing glyphs would be boxes as wide together as apart.
    expect(await inkWidth('سسس')).toBeLessThan((await apart(['س', 'س', 'س'])) * 0.9);
    expect(await inkWidth('क्ष')).toBeLessThan((await apart(['क', '्', 'ष'])) * 0.9);
  });

  it('sets a paragraph that starts right to left flush right, and one that starts left to right flush left', { timeout: 30_000 }, async () => {
    const inkColumns = async (text: string) => {
      const { pdf } = await renderBookPdf(scriptBook('en', text, 'Title'), { pageSize: 'A5', fonts, created: MODIFIED });
      const { data, info } = await sharp(await pdfPageImage(pdf, 2))
        .greyscale()
        .raw()
        .toBuffer({ resolveWithObject: true });
      // The text's rows only (the page number sits at the foot).
      const columns = Array.from({ length: info.width }, (_, x) =>
        Array.from({ length: info.height / 4 }, (_, y) => data[y * info.width + x]).some((value) => value < 128),
      );
      return { left: columns.slice(0, info.width / 2).some(Boolean), right: columns.slice(info.width / 2).some(Boolean) };
    };
    expect(await inkColumns('שלום Fox')).toEqual({ left: false, right: true });
    expect(await inkColumns('مرحبا')).toEqual({ left: false, right: true });
    expect(await inkColumns('Fox שלום')).toEqual({ left: true, right: false });
  });
});

class MemoryMedia implements Pick<MediaStore, 'read'> {
  readonly files = new Map<string, Buffer>();
  async read(key: string): Promise<Buffer> {
    const bytes = this.files.get(key);
    if (!bytes) throw new Error(`ENOENT: no file ${key}`);
    return bytes;
  }
}

/** The exporters on this thread, counting the books it is asked for. */
class CountingRenderer implements BookRenderer {
  readonly jobs: BookRenderJob[] = [];
  private readonly inner = new InThreadBookRenderer(fonts);
  async render(job: BookRenderJob): Promise<RenderedBookFile> {
    this.jobs.push(job);
    return this.inner.render(job);
  }
  async close(): Promise<void> {}
}

/** A saved book of TEXTS with a combined picture per page (`picture(page + 1)`); `lostPicture`'s file is missing. */
async function saveExportBook(repositories: InMemoryRepositories, media: MemoryMedia, storyId: string, options: { lostPicture?: number | null } = {}) {
  const sessionId = randomUUID();
  await repositories.createSession({
    id: sessionId,
    prompt: 'a fox',
    options: { kind: GenerationKind.BOOK, style: null, seed: null, pageCount: TEXTS.length },
    stage: STAGE.queued,
    ownerId: null,
  });
  await repositories.saveBookOnce(
    {
      id: storyId,
      title: TITLE,
      prompt: 'a fox',
      style: null,
      characterDescription: 'a small red fox',
      pages: TEXTS.map((_, index) => ({
        outline: `part ${index + 1}`,
        sceneDescription: `scene ${index + 1}`,
        characterSide: 'left',
        characterDistance: 'near',
      })),
    } as Parameters<InMemoryRepositories['saveBookOnce']>[0],
    sessionId,
  );
  for (const [index, text] of TEXTS.entries()) {
    await repositories.savePageTextOnce(storyId, index, text);
    await saveCombinedPicture(repositories, media, storyId, index, { seed: index + 1, lost: index === options.lostPicture });
  }
}

/** Page `index`'s combined picture, `picture(seed)`; a draft of `sessionId` when given; its file missing when `lost`. */
async function saveCombinedPicture(
  repositories: InMemoryRepositories,
  media: MemoryMedia,
  storyId: string,
  index: number,
  options: { seed: number; lost?: boolean; sessionId?: string },
) {
  const key = `images/${randomUUID()}.png`;
  if (!options.lost) media.files.set(key, await picture(options.seed));
  await repositories.saveImageOnce({
    id: randomUUID(),
    storyId,
    imageType: ImageType.COMBINED,
    pageIndex: index,
    filePath: key,
    width: 512,
    height: 512,
    promptUsed: 'p',
    seed: options.seed,
    pendingSessionId: options.sessionId,
  });
}

describe('BookExportService', () => {
  function service(repositories: InMemoryRepositories, media: MemoryMedia, options: { renderer?: BookRenderer; cache?: RenderedBookCache | null } = {}) {
    return new BookExportService(
      repositories,
      repositories,
      media,
      { pdfPageSize: 'A5', renderer: options.renderer ?? new InThreadBookRenderer(fonts), cache: options.cache ?? null, now: () => MODIFIED },
      pino({ level: 'silent' }),
    );
  }

  /** A one-page story whose pictures are `types` (page 0's, and the character's), each a different PNG; they are returned by type. */
  async function onePageStory(repositories: InMemoryRepositories, media: MemoryMedia, types: ImageType[]): Promise<Map<ImageType, Buffer>> {
    const sessionId = randomUUID();
    await repositories.createSession({
      id: sessionId,
      prompt: 'a fox',
      options: { kind: GenerationKind.BOOK, style: null, seed: null, pageCount: 1 },
      stage: STAGE.queued,
      ownerId: null,
    });
    await repositories.saveBookOnce(
      {
        id: STORY_ID,
        title: 'One Night',
        prompt: 'a fox',
        style: null,
        characterDescription: 'a small red fox',
        pages: [{ outline: 'all of it', sceneDescription: 'a hill under the stars', characterSide: 'left', characterDistance: 'near' }],
      } as Parameters<InMemoryRepositories['saveBookOnce']>[0],
      sessionId,
    );
    await repositories.savePageTextOnce(STORY_ID, 0, TEXTS[0]);
    const pictures = new Map<ImageType, Buffer>();
    for (const [n, imageType] of types.entries()) {
      const key = `images/${randomUUID()}.png`;
      const png = await picture(n + 5);
      media.files.set(key, png);
      pictures.set(imageType, png);
      await repositories.saveImageOnce({
        id: randomUUID(),
        storyId: STORY_ID,
        imageType,
        pageIndex: imageType === ImageType.CHARACTER ? null : 0,
        filePath: key,
        width: 512,
        height: 512,
        promptUsed: 'p',
        seed: 1,
      });
    }
    return pictures;
  }

  it('shows a one-page story whose character could not be composited with its scene, in HTML that parses without an error', async () => {
    const repositories = new InMemoryRepositories();
    const media = new MemoryMedia();
    const pictures = await onePageStory(repositories, media, [ImageType.CHARACTER, ImageType.BACKGROUND]);
    const html = await service(repositories, media).export(STORY_ID, 'HTML');
    expect(html!.pagesWithoutPicture).toEqual([]);
    const { errors, pages } = readHtmlBook(html!.bytes);
    expect(errors).toEqual([]);
    expect(pages).toEqual([
      {
        id: 'page-1',
        pictures: [`data:image/png;base64,${pictures.get(ImageType.BACKGROUND)!.toString('base64')}`],
        paragraphs: TEXTS[0].split(/\n+/),
      },
    ]);
    expect(html!.bytes.toString('utf8')).toContain('alt="a hill under the stars"');
  });

  it('shows a story without page rows as one page: its whole text and its page-0 picture', async () => {
    const repositories = new InMemoryRepositories();
    const media = new MemoryMedia();
    const pictures = await onePageStory(repositories, media, [ImageType.CHARACTER, ImageType.BACKGROUND, ImageType.COMBINED]);
    repositories.pages.splice(0);
    const html = await service(repositories, media).export(STORY_ID, 'HTML');
    const { errors, pages } = readHtmlBook(html!.bytes);
    expect(errors).toEqual([]);
    expect(pages).toEqual([
      {
        id: 'page-1',
        pictures: [`data:image/png;base64,${pictures.get(ImageType.COMBINED)!.toString('base64')}`],
        paragraphs: TEXTS[0].split(/\n+/),
      },
    ]);
  });

  it('answers null for a story that does not exist', async () => {
    const repositories = new InMemoryRepositories();
    expect(await service(repositories, new MemoryMedia()).export(randomUUID(), 'HTML')).toBeNull();
  });

  it('exports every format with its content type, the language read from the text, and a lost picture leaves its page text only', async () => {
    const repositories = new InMemoryRepositories();
    const media = new MemoryMedia();
    await saveExportBook(repositories, media, STORY_ID, { lostPicture: 1 });
    const exports = service(repositories, media);

    const html = await exports.export(STORY_ID, 'HTML');
    expect(html).toMatchObject({ title: TITLE, extension: 'html', contentType: 'text/html; charset=utf-8', pagesWithoutPicture: [1] });
    const text = html!.bytes.toString('utf8');
    expect(text.match(/<img /g)).toHaveLength(TEXTS.length - 1);
    // Hangul on one page: Korean, though another page has kana among its Han characters.
    expect(text).toContain('<html lang="ko" dir="ltr">');
    expect(text).toContain(`<p dir="auto">${TEXTS[3]}</p>`);

    const epub = await exports.export(STORY_ID, 'EPUB');
    expect(epub).toMatchObject({ extension: 'epub', contentType: 'application/epub+zip', pagesWithoutPicture: [1] });
    const entries = readZip(epub!.bytes);
    expect(entries.map((entry) => entry.name)).not.toContain('OEBPS/images/page-02.png');
    expect(entries.find((entry) => entry.name === 'OEBPS/content.opf')!.data.toString('utf8')).toContain('<dc:language>ko</dc:language>');
    const page4 = entries.find((entry) => entry.name === 'OEBPS/page-04.xhtml')!.data.toString('utf8');
    expect(page4).toContain('xml:lang="ko" lang="ko"');
    expect(page4).toContain(`<p dir="auto">${TEXTS[3]}</p>`);

    const pdf = await exports.export(STORY_ID, 'PDF');
    expect(pdf).toMatchObject({ extension: 'pdf', contentType: 'application/pdf' });
    expect(pdf!.bytes.subarray(0, 5).toString('ascii')).toBe('%PDF-');
  });
});

// PDFs of three 512×512 pictures: seconds each on a busy 2-core machine, like the PDF tests above.
describe('BookExportService with its cache of rendered files', { timeout: 30_000 }, () => {
  let repositories: InMemoryRepositories;
  let media: MemoryMedia;
  let renderer: CountingRenderer;
  const LARGE = 64 * 2 ** 20;

  function service(cache: RenderedBookCache | null) {
    return new BookExportService(repositories, repositories, media, { pdfPageSize: 'A5', renderer, cache, now: () => new Date() }, pino({ level: 'silent' }));
  }

  const saveBook = (storyId: string, options: { lostPicture?: number } = {}) => saveExportBook(repositories, media, storyId, options);

  /** A picture of the page under a new media key; `sessionId` makes it a repaint's draft until replacePagePictures publishes it. */
  const savePicture = (storyId: string, index: number, options: { seed: number; lost?: boolean; sessionId?: string }) =>
    saveCombinedPicture(repositories, media, storyId, index, options);

  beforeEach(() => {
    repositories = new InMemoryRepositories();
    media = new MemoryMedia();
    renderer = new CountingRenderer();
  });

  it('renders a book downloaded twice once, per format, and serves the same bytes', async () => {
    await saveBook(STORY_ID);
    const exports = service(new RenderedBookCache(LARGE));
    const first = await exports.export(STORY_ID, 'PDF');
    const second = await exports.export(STORY_ID, 'PDF');
    expect(renderer.jobs.map((job) => job.format)).toEqual(['PDF']);
    expect(second).toEqual(first);

    await exports.export(STORY_ID, 'EPUB');
    await exports.export(STORY_ID, 'EPUB');
    expect(renderer.jobs.map((job) => job.format)).toEqual(['PDF', 'EPUB']);
  });

  it('renders once for downloads that arrive together', async () => {
    await saveBook(STORY_ID);
    const exports = service(new RenderedBookCache(LARGE));
    const files = await Promise.all([exports.export(STORY_ID, 'HTML'), exports.export(STORY_ID, 'HTML'), exports.export(STORY_ID, 'HTML')]);
    expect(renderer.jobs).toHaveLength(1);
    expect(files[1]?.bytes.equals(files[0]!.bytes)).toBe(true);
    expect(files[2]?.bytes.equals(files[0]!.bytes)).toBe(true);
  });

  it('renders again after the text of a page is edited, and the new file has the new text', async () => {
    await saveBook(STORY_ID);
    const exports = service(new RenderedBookCache(LARGE));
    await exports.export(STORY_ID, 'HTML');
    await repositories.replacePageText(STORY_ID, 1, 'The fox went home.');
    const edited = await exports.export(STORY_ID, 'HTML');
    expect(renderer.jobs).toHaveLength(2);
    expect(edited!.bytes.toString('utf8')).toContain('<p dir="auto">The fox went home.</p>');
    await exports.export(STORY_ID, 'HTML');
    expect(renderer.jobs).toHaveLength(2);
  });

  it('renders again after a page is painted anew, with the new picture', async () => {
    await saveBook(STORY_ID);
    const exports = service(new RenderedBookCache(LARGE));
    await exports.export(STORY_ID, 'EPUB');
    const repaint = randomUUID();
    // The swap happens only inside a running PAGE_REPAINT session, as in the pipeline.
    await repositories.createSession({
      id: repaint,
      prompt: 'paint page 3 again',
      options: { kind: GenerationKind.PAGE_REPAINT, pageIndex: 2, seed: 9, redescribe: false, style: 'storybook' },
      stage: STAGE.queued,
      ownerId: null,
      storyId: STORY_ID,
    });
    repositories.sessions.get(repaint)!.status = GenerationStatus.GENERATING_IMAGES;
    await savePicture(STORY_ID, 2, { seed: 9, sessionId: repaint });
    // The repaint's draft is not the page's picture yet: the cached file still holds.
    await exports.export(STORY_ID, 'EPUB');
    expect(renderer.jobs).toHaveLength(1);

    await repositories.replacePagePictures(STORY_ID, 2, repaint, null);
    const repainted = await exports.export(STORY_ID, 'EPUB');
    expect(renderer.jobs).toHaveLength(2);
    const png = readZip(repainted!.bytes).find((entry) => entry.name === 'OEBPS/images/page-03.png');
    expect(png?.data.equals(await picture(9))).toBe(true);
  });

  it('does not keep a file rendered without a lost picture, so the next download tries the picture again', async () => {
    await saveBook(STORY_ID, { lostPicture: 0 });
    const exports = service(new RenderedBookCache(LARGE));
    expect((await exports.export(STORY_ID, 'HTML'))?.pagesWithoutPicture).toEqual([0]);
    expect((await exports.export(STORY_ID, 'HTML'))?.pagesWithoutPicture).toEqual([0]);
    expect(renderer.jobs).toHaveLength(2);
  });

  it('drops the least recently downloaded file when the files outgrow its size', async () => {
    const other = randomUUID();
    await saveBook(STORY_ID);
    await saveBook(other);
    const size = (await service(null).export(STORY_ID, 'HTML'))!.bytes.length;
    renderer.jobs.length = 0;
    // Room for one file of this book, not two.
    const exports = service(new RenderedBookCache(Math.round(size * 1.5)));
    await exports.export(STORY_ID, 'HTML');
    await exports.export(other, 'HTML');
    await exports.export(other, 'HTML');
    expect(renderer.jobs.map((job) => job.book.id)).toEqual([STORY_ID, other]);
    await exports.export(STORY_ID, 'HTML');
    expect(renderer.jobs.map((job) => job.book.id)).toEqual([STORY_ID, other, STORY_ID]);
  });

  it('keeps nothing that does not fit at all, and renders every download without a cache (EXPORT_CACHE_MB=0)', async () => {
    await saveBook(STORY_ID);
    const tiny = service(new RenderedBookCache(1024));
    await tiny.export(STORY_ID, 'PDF');
    await tiny.export(STORY_ID, 'PDF');
    expect(renderer.jobs).toHaveLength(2);
    const none = service(null);
    await none.export(STORY_ID, 'PDF');
    await none.export(STORY_ID, 'PDF');
    expect(renderer.jobs).toHaveLength(4);
  });
});

describe('export links', () => {
  const other = '0b5e3a52-9c1d-4e7f-a2b3-c4d5e6f70819';

  it('are server paths (the GraphQL layer makes them absolute), open without a signer (AUTH_MODE=none)', () => {
    expect(new ExportLinks(null).urlFor(STORY_ID, 'EPUB')).toBe(`/export/${STORY_ID}.epub`);
    expect(new ExportLinks(null).urlFor(STORY_ID, 'PDF')).toBe(`/export/${STORY_ID}.pdf`);
    expect(new ExportLinks(null).allows(STORY_ID, 'HTML', {})).toBe(true);
  });

  it('carry a signature for one story and one format, valid until it expires', () => {
    let now = Date.parse('2026-03-04T05:06:07Z');
    const links = new ExportLinks(new MediaUrlSigner('s'.repeat(32), 3600, () => now));
    const url = new URL(links.urlFor(STORY_ID, 'PDF'), 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    expect(url.pathname).toBe(`/export/${STORY_ID}.pdf`);
    expect(links.allows(STORY_ID, 'PDF', query)).toBe(true);
    expect(links.allows(STORY_ID, 'EPUB', query)).toBe(false);
    expect(links.allows(other, 'PDF', query)).toBe(false);
    expect(links.allows(STORY_ID, 'PDF', {})).toBe(false);
    now += 2 * 3600 * 1000;
    expect(links.allows(STORY_ID, 'PDF', query)).toBe(false);
  });
});

describe('the download file name', () => {
  it('is the title, with an ASCII fallback and an RFC 8187 filename* when the title is not plain ASCII', () => {
    expect(attachmentDisposition('The Lighthouse Keeper', 'pdf', 'story-1')).toBe('attachment; filename="The Lighthouse Keeper.pdf"');
    expect(attachmentDisposition('Crème brûlée: a "tale"/story?', 'epub', 'story-1')).toBe(
      `attachment; filename="Creme brulee a tale story.epub"; filename*=UTF-8''Cr%C3%A8me%20br%C3%BBl%C3%A9e%20a%20tale%20story.epub`,
    );
    expect(attachmentDisposition('Лиса и 星星', 'html', 'story-6f1c2b9e')).toBe(
      `attachment; filename="story-6f1c2b9e.html"; filename*=UTF-8''%D0%9B%D0%B8%D1%81%D0%B0%20%D0%B8%20%E6%98%9F%E6%98%9F.html`,
    );
    expect(attachmentDisposition("It's (not) *a* test\u0000", 'pdf', 'x')).toBe(
      `attachment; filename="It-s (not) a test.pdf"; filename*=UTF-8''It%27s%20%28not%29%20a%20test.pdf`,
    );
  });
});

describe('text in the XHTML and HTML files', () => {
  it('escapes markup and drops what XML allows nowhere, keeping tabs, newlines and astral characters', () => {
    expect(escapeXml(`a<b & "c" 'd'>\u0000\u0007\t\n\uFFFE\uD800x🦊`)).toBe('a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;\t\nx🦊');
  });
});

describe('the book language', () => {
  it('is named by the script only where the script names one, else en', () => {
    expect(bookLanguage('The fox counted the stars.')).toBe('en');
    expect(bookLanguage('Лиса считала звёзды.')).toBe('en');
    expect(bookLanguage('狐狸数星星。')).toBe('zh');
    expect(bookLanguage('きつねは星を数えました。狐')).toBe('ja');
    expect(bookLanguage('여우가 별을 세었어요.')).toBe('ko');
    expect(bookLanguage('عد الثعلب النجوم.')).toBe('ar');
    expect(bookLanguage('روباه ستاره‌ها را یکی یکی شمرد.')).toBe('fa');
    expect(bookLanguage('لومڑی نے ستارے گنے۔')).toBe('ur');
    expect(bookLanguage('השועל ספר את הכוכבים.')).toBe('he');
    expect(bookLanguage('लोमड़ी ने तारे गिने।')).toBe('hi');
  });

  it('gives the writing direction: right to left for Arabic, Persian, Urdu and Hebrew', () => {
    expect(['ar', 'fa', 'ur', 'he', 'ar-EG'].map(bookDirection)).toEqual(['rtl', 'rtl', 'rtl', 'rtl', 'rtl']);
    expect(['en', 'hi', 'zh', 'ko', 'ja', 'ru'].map(bookDirection)).toEqual(['ltr', 'ltr', 'ltr', 'ltr', 'ltr', 'ltr']);
  });
});

describe('the PDF fonts', () => {
  it('read unicode-range lists', () => {
    expect(parseUnicodeRange('U+0000-00ff, U+0131,U+2000-206f')).toEqual([
      [0, 255],
      [0x131, 0x131],
      [0x2000, 0x206f],
    ]);
  });

  it('pick a face per character: Latin, Cyrillic, CJK and Hangul from different files, spaces kept in their run', () => {
    const runs = fonts.runs('Fox Лиса 狐狸 여우');
    expect(runs.map((run) => run.text)).toEqual(['Fox ', 'Лиса ', '狐狸 ', '여우']);
    expect(runs.map((run) => run.face.name)).toEqual(['NotoSansSC-latin', 'NotoSansSC-cyrillic', 'NotoSansSC-chinese-simplified', 'NanumGothic-korean']);
    const missing = new Set<string>();
    fonts.runs('\u{10FFFD}', missing);
    expect([...missing]).toEqual(['\u{10FFFD}']);
  });

  it('set a word of Arabic, Persian, Urdu, Hebrew or Devanagari as one run, marks and joiners in it, so it is shaped whole', () => {
    const missing = new Set<string>();
    // Shadda and tanween, a Persian ZWNJ, Urdu letters, Hebrew points, Devanagari virama, vowel signs, nukta and conjuncts.
    const words = ['يعدّ هادئًا', 'ستاره‌ها', 'لومڑی نے', 'שָׁלוֹם', 'क्षत्रिय लोमड़ी प्रार्थना'];
    expect(words.map((word) => fonts.runs(word, missing).map((run) => [run.face.name, run.text]))).toEqual([
      [['Vazirmatn-arabic', 'يعدّ هادئًا']],
      [['Vazirmatn-arabic', 'ستاره‌ها']],
      [['Vazirmatn-arabic', 'لومڑی نے']],
      [['NotoSansHebrew-hebrew', 'שָׁלוֹם']],
      [['NotoSansDevanagari-devanagari', 'क्षत्रिय लोमड़ी प्रार्थना']],
    ]);
    expect([...missing]).toEqual([]);
    expect(fonts.runs('Fox ثعلب שועל लोमड़ी').map((run) => run.face.name)).toEqual([
      'NotoSansSC-latin',
      'Vazirmatn-arabic',
      'NotoSansHebrew-hebrew',
      'NotoSansDevanagari-devanagari',
    ]);
  });
});
