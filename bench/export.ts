/**
 * Book export: a 6-page book with a 512×512 picture on every page, rendered as HTML,
 * EPUB and PDF by the exporters the server uses (src/services/export/), timed and
 * weighed. Two books: Latin text only, and pages that rotate Latin, Cyrillic and
 * Chinese/Japanese text (the PDF then embeds a CJK font subset). The pictures are
 * noise over a gradient, which PNG compresses about as badly as a painted picture.
 *
 *   npm run bench:export        # BENCH_RUNS=5 by default
 *
 * Results go to stdout and into bench/RESULTS.md between the export markers.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import sharp from 'sharp';
import { FontFallback, bookFaces } from '../src/services/export/book-fonts.js';
import { renderBookEpub } from '../src/services/export/epub-exporter.js';
import type { BookForExport } from '../src/services/export/export-book.js';
import { renderBookHtml } from '../src/services/export/html-exporter.js';
import { renderBookPdf } from '../src/services/export/pdf-exporter.js';
import { DEFAULT_REPLIES } from '../tests/support/fake-ollama.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PAGES = 6;
const SIZE = 512;
/** About 80 words, as the fake story agent writes a page. */
const LATIN = DEFAULT_REPLIES.story.split('\n').slice(2).join('\n');
const CYRILLIC =
  'Мара хранила маяк на Чаячьем мысу одиннадцать зим и ни разу не говорила с бурей. Всё изменилось в ту ночь, когда ветер трижды постучал в её дверь. «Я устала, что меня боятся», — сказала буря голосом, похожим на катящийся гравий. Мара заварила чай.';
const CJK =
  '玛拉在海鸥角守护灯塔已经十一个冬天了，她从来没有和暴风雨说过话。那天夜里，风敲了三次她的门，一切都改变了。「我厌倦了被人害怕」，暴风雨用像滚动的碎石一样的声音说道。マーラはお茶をいれました。朝になると、二人は友だちになっていました。';

async function picture(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(SIZE * SIZE * 3);
  let state = seed * 2654435761;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      state = (state * 1103515245 + 12345) >>> 0;
      const noise = (state >>> 24) % 24;
      const i = (y * SIZE + x) * 3;
      pixels[i] = (x / 2 + noise) & 255;
      pixels[i + 1] = (y / 2 + noise) & 255;
      pixels[i + 2] = (((x + y) / 4) * seed + noise) & 255;
    }
  }
  return sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

async function book(texts: string[]): Promise<BookForExport> {
  return {
    id: '6f1c2b9e-3d4a-4b5c-8d7e-9f0a1b2c3d4e',
    title: 'The Lighthouse Keeper and the Storm',
    prompt: 'a lighthouse keeper who befriends a storm',
    style: 'watercolor',
    createdAt: new Date(),
    language: 'en',
    pages: await Promise.all(
      Array.from({ length: PAGES }, async (_, index) => ({
        index,
        text: texts[index % texts.length],
        picture: { png: await picture(index + 1), width: SIZE, height: SIZE, alt: `Scene ${index + 1}` },
      })),
    ),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function time(render: () => Promise<Buffer>): Promise<{ first: number; median: number; bytes: number }> {
  const runs: number[] = [];
  let bytes = 0;
  for (let i = 0; i <= RUNS; i++) {
    const start = performance.now();
    bytes = (await render()).length;
    runs.push(performance.now() - start);
  }
  return { first: runs[0], median: median(runs.slice(1)), bytes };
}

const fonts = new FontFallback(bookFaces());
const books = { 'Latin text': await book([LATIN]), 'Latin, Cyrillic and CJK text': await book([LATIN, CYRILLIC, CJK]) };
const pictureBytes = books['Latin text'].pages.reduce((sum, page) => sum + (page.picture?.png.length ?? 0), 0);
const rows: string[] = [];
for (const [name, content] of Object.entries(books)) {
  const formats = {
    HTML: () => Promise.resolve(renderBookHtml(content)),
    EPUB: () => renderBookEpub(content, new Date()),
    'PDF (A5)': async () => (await renderBookPdf(content, { pageSize: 'A5', fonts, created: new Date() })).pdf,
  };
  for (const [format, render] of Object.entries(formats)) {
    const result = await time(render);
    rows.push(`| ${name} | ${format} | ${(result.bytes / 1024).toFixed(0)} kB | ${result.median.toFixed(0)} ms | ${result.first.toFixed(0)} ms |`);
  }
}

const report = [
  `### Export: ${PAGES} pages, ${SIZE}×${SIZE} pictures (median of ${RUNS}, after the first)`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `The ${PAGES} PNG pictures weigh ${(pictureBytes / 1024).toFixed(0)} kB together. HTML embeds them as base64, EPUB stores them as they are, the PDF carries them as JPEG (quality 92, 4:4:4). "first" is the first export in the process (the PDF's includes reading and unpacking the fonts it needs).`,
  '',
  '| book | format | file size | time | first |',
  '| --- | --- | ---: | ---: | ---: |',
  ...rows,
  '',
].join('\n');

process.stdout.write(`${report}\n`);
const resultsFile = new URL('./RESULTS.md', import.meta.url);
const begin = '<!-- export:begin -->';
const end = '<!-- export:end -->';
const existing = await fs.readFile(resultsFile, 'utf8');
const block = `${begin}\n${report}${end}`;
const section = `## Export (\`npm run bench:export\`)\n\nThe same exporters the server runs for \`Story.exportUrl\`, without HTTP and the database around them.\n\n${block}\n`;
await fs.writeFile(
  resultsFile,
  existing.includes(begin) ? existing.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${existing.trimEnd()}\n\n${section}`,
);
