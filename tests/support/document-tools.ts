import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { type DefaultTreeAdapterTypes, parse } from 'parse5';
import { EPUBCHECK_JAR } from './environment.js';

/**
 * The standard tools that open an exported book, so tests judge the file the way a reader's
 * software does rather than trusting the writer: epubcheck for EPUB, poppler's pdfinfo,
 * pdftotext and pdffonts for PDF, parse5 (a browser's HTML parser) for HTML. Each takes
 * the file's bytes.
 */

const run = promisify(execFile);

async function withFile<T>(bytes: Buffer, extension: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-export-'));
  const file = path.join(dir, `book.${extension}`);
  try {
    await fs.writeFile(file, bytes);
    return await use(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export interface EpubcheckReport {
  fatals: number;
  errors: number;
  warnings: number;
  /** Everything epubcheck printed, for the failure message. */
  output: string;
}

/** Runs epubcheck; its message counts, read from its summary line, and its full output. */
export function runEpubcheck(epub: Buffer): Promise<EpubcheckReport> {
  return withFile(epub, 'epub', async (file) => {
    // The quick compiler only and the serial collector: epubcheck is a short run, and this machine has 2 cores (about 3× less CPU time).
    const java = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-jar', EPUBCHECK_JAR, file];
    const result = await run('java', java, { maxBuffer: 16 * 1024 * 1024 }).catch(
      // epubcheck exits 1 when it found errors; its report is what counts.
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );
    const output = `${result.stdout}\n${result.stderr}`;
    const summary = /Messages: (\d+) fatals? \/ (\d+) errors? \/ (\d+) warnings?/.exec(output);
    if (!summary) throw new Error(`epubcheck printed no summary:\n${output}`);
    return { fatals: Number(summary[1]), errors: Number(summary[2]), warnings: Number(summary[3]), output };
  });
}

/** pdfinfo's fields (`Pages`, `Page size`, `Title`, …) as strings. */
export function pdfInfo(pdf: Buffer): Promise<Record<string, string>> {
  return withFile(pdf, 'pdf', async (file) => {
    const { stdout } = await run('pdfinfo', ['-enc', 'UTF-8', file]);
    return Object.fromEntries(
      stdout
        .split('\n')
        .map((line) => /^([^:]+):\s*(.*)$/.exec(line))
        .filter((match): match is RegExpExecArray => match !== null)
        .map((match) => [match[1], match[2].trim()]),
    );
  });
}

/**
 * The text of each page (pdftotext, split at form feeds). `raw`: in the order it is drawn
 * (pdftotext -raw) rather than rebuilt from where it stands on the page.
 */
export function pdfPageTexts(pdf: Buffer, options: { raw?: boolean } = {}): Promise<string[]> {
  return withFile(pdf, 'pdf', async (file) => {
    const { stdout } = await run('pdftotext', [...(options.raw ? ['-raw'] : []), '-enc', 'UTF-8', file, '-'], { maxBuffer: 16 * 1024 * 1024 });
    return stdout.split('\f').slice(0, -1);
  });
}

export interface PdfFont {
  name: string;
  type: string;
  embedded: boolean;
}

/** pdffonts' table: each font's name, type and whether it is embedded. */
export function pdfFonts(pdf: Buffer): Promise<PdfFont[]> {
  return withFile(pdf, 'pdf', async (file) => {
    const { stdout } = await run('pdffonts', [file]);
    const lines = stdout.split('\n').filter(Boolean);
    const ruler = lines[1] ?? '';
    // Columns are as wide as the ruler's dashes: name, type, encoding, emb, sub, uni, object ID.
    const columns = [...ruler.matchAll(/-+/g)].map((dash) => [dash.index, dash.index + dash[0].length] as const);
    return lines.slice(2).map((line) => {
      const [name, type, , emb] = columns.map(([from, to]) => line.slice(from, to).trim());
      return { name, type, embedded: emb === 'yes' };
    });
  });
}

/** Text without any whitespace, to compare a page's text with what pdftotext gives back (it breaks lines where the PDF did). */
export function withoutWhitespace(text: string): string {
  return text.replace(/\s+/g, '');
}

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  /** Length of the local header's extra field (OCF wants none on `mimetype`). */
  localExtraLength: number;
  data: Buffer;
}

/** The entries of a ZIP file in the order they are stored, read from its central directory (no ZIP64, no encryption). */
export function readZip(zip: Buffer): ZipEntry[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a ZIP file: no end of central directory');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: (ZipEntry & { offset: number })[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry ${i}`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const localExtraLength = zip.readUInt16LE(local + 28);
    const start = local + 30 + zip.readUInt16LE(local + 26) + localExtraLength;
    const stored = zip.subarray(start, start + compressedSize);
    entries.push({ name, method, localExtraLength, data: method === 8 ? inflateRawSync(stored) : stored, offset: local });
  }
  return entries.sort((a, b) => a.offset - b.offset).map(({ offset: _offset, ...entry }) => entry);
}

/** One page rendered by pdftoppm (poppler) as a grey PNG at `dpi`. */
export function pdfPageImage(pdf: Buffer, page: number, dpi = 50): Promise<Buffer> {
  return withFile(pdf, 'pdf', async (file) => {
    const out = path.join(path.dirname(file), 'page');
    await run('pdftoppm', ['-r', String(dpi), '-f', String(page), '-l', String(page), '-gray', '-png', '-singlefile', file, out]);
    return fs.readFile(`${out}.png`);
  });
}

export interface HtmlBook {
  /** The HTML tokenizer's parse errors (parse5 codes with line:column): an unquoted or broken attribute, a stray `<`, no doctype. */
  errors: string[];
  /** Per `<section class="page">` that is a child of `<article>`, in order: its id, its pictures' `src`, its paragraphs' text. */
  pages: { id: string; pictures: string[]; paragraphs: string[] }[];
}

/**
 * The single-file HTML book as a browser builds it. A page section left open would nest the
 * next one inside it and drop it from `pages`, so the list checks the file's structure too.
 */
export function readHtmlBook(bytes: Buffer): HtmlBook {
  const errors: string[] = [];
  const document = parse(bytes.toString('utf8'), { onParseError: (error) => errors.push(`${error.code} at ${error.startLine}:${error.startCol}`) });
  const article = elements(document).find((element) => element.nodeName === 'article');
  const sections = (article?.childNodes ?? []).filter(
    (node): node is DefaultTreeAdapterTypes.Element => node.nodeName === 'section' && attribute(node as DefaultTreeAdapterTypes.Element, 'class') === 'page',
  );
  return {
    errors,
    pages: sections.map((section) => {
      const inside = elements(section);
      return {
        id: attribute(section, 'id') ?? '',
        pictures: inside.filter((element) => element.nodeName === 'img').map((element) => attribute(element, 'src') ?? ''),
        paragraphs: inside.filter((element) => element.nodeName === 'p' && attribute(element, 'class') !== 'number').map(textOf),
      };
    }),
  };
}

function elements(node: DefaultTreeAdapterTypes.ParentNode): DefaultTreeAdapterTypes.Element[] {
  return node.childNodes.flatMap((child) => ('tagName' in child ? [child, ...elements(child)] : []));
}

function attribute(element: DefaultTreeAdapterTypes.Element, name: string): string | undefined {
  return element.attrs.find((candidate) => candidate.name === name)?.value;
}

function textOf(node: DefaultTreeAdapterTypes.ParentNode): string {
  return node.childNodes
    .map((child) => (child.nodeName === '#text' ? (child as DefaultTreeAdapterTypes.TextNode).value : 'childNodes' in child ? textOf(child) : ''))
    .join('');
}
