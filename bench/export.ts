/**
 * Book export: a 6-page book with a 512×512 picture on every page, rendered as HTML,
 * EPUB and PDF by the exporters the server uses (src/services/export/), timed and
 * weighed. Two books: Latin text only, and pages that rotate Latin, Cyrillic and
 * Chinese/Japanese text (the PDF then embeds a CJK font subset). The pictures are
 * noise over a gradient, which PNG compresses about as badly as a painted picture.
 *
 * Then what a download does to the server: the main thread's event-loop delay
 * (perf_hooks.monitorEventLoopDelay, a 5 ms timer kept running as a server's sockets
 * would) while the PDF renders on the main thread (as before) and on the export thread
 * (as the server does now), and the time of a second download of the same file through
 * BookExportService with its cache.
 *
 *   npm run bench:export        # BENCH_RUNS=5 by default
 *
 * Results go to stdout and into bench/RESULTS.md between the export markers.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import sharp from 'sharp';
import { WorkerThreadBookRenderer } from '../src/adapters/export/worker-thread-book-renderer.js';
import { GenerationKind, ImageType } from '../src/entities/index.js';
import type { BookRenderer } from '../src/ports/book-renderer.js';
import { BookExportService } from '../src/services/export/book-export-service.js';
import { FontFallback, bookFaces } from '../src/services/export/book-fonts.js';
import { renderBookEpub } from '../src/services/export/epub-exporter.js';
import type { BookForExport, ExportFormat } from '../src/services/export/export-book.js';
import { renderBookHtml } from '../src/services/export/html-exporter.js';
import { InThreadBookRenderer } from '../src/services/export/in-thread-book-renderer.js';
import { renderBookPdf } from '../src/services/export/pdf-exporter.js';
import { RenderedBookCache } from '../src/services/export/rendered-book-cache.js';
import { STAGE } from '../src/services/progress/progress-plan.js';
import { DEFAULT_REPLIES } from '../tests/support/fake-ollama.js';
import { InMemoryRepositories } from '../tests/support/in-memory-repositories.js';

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

/** A copy of the book whose pictures own their memory, as fs.readFile gives them to the server (and a thread may take them over). */
function freshCopy(content: BookForExport): BookForExport {
  return {
    ...content,
    pages: content.pages.map((page) => ({
      ...page,
      picture: page.picture ? { ...page.picture, png: Buffer.from(new Uint8Array(page.picture.png).buffer) } : null,
    })),
  };
}

interface LoopDelay {
  /** Milliseconds: median over the renders of each one's p99, the largest delay seen, the median render time. */
  p99: number;
  max: number;
  render: number;
}

/** Main-thread event-loop delay while `renderer` makes `format` `runs` times, a 5 ms timer kept running as a server's sockets would. */
async function loopDelay(renderer: BookRenderer, content: BookForExport, format: ExportFormat, runs: number): Promise<LoopDelay> {
  const p99s: number[] = [];
  const renders: number[] = [];
  let max = 0;
  for (let i = 0; i < runs; i++) {
    const job = { book: freshCopy(content), format, pdfPageSize: 'A5' as const, modified: new Date() };
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const ticker = setInterval(() => undefined, 5);
    loop.enable();
    // Its first tick only sets the baseline: a render that held the loop from the start would otherwise leave no sample.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const start = performance.now();
    await renderer.render(job);
    renders.push(performance.now() - start);
    // And a stall is recorded when the timer next fires.
    await new Promise((resolve) => setTimeout(resolve, 20));
    loop.disable();
    clearInterval(ticker);
    p99s.push(loop.percentile(99) / 1e6);
    max = Math.max(max, loop.max / 1e6);
  }
  return { p99: median(p99s), max, render: median(renders) };
}

/** The book saved as the server keeps it, exported twice through BookExportService with a cache: the render, then the cached file. */
async function cachedDownload(renderer: BookRenderer, content: BookForExport): Promise<{ first: number; second: number }> {
  const repositories = new InMemoryRepositories();
  const files = new Map<string, Buffer>();
  const media = { read: async (key: string) => Buffer.from(new Uint8Array(files.get(key)!).buffer) };
  const sessionId = randomUUID();
  const storyId = randomUUID();
  await repositories.createSession({
    id: sessionId,
    prompt: content.prompt,
    options: { kind: GenerationKind.BOOK, style: content.style, seed: null, pageCount: PAGES },
    stage: STAGE.queued,
    ownerId: null,
  });
  await repositories.saveBookOnce(
    {
      id: storyId,
      title: content.title,
      prompt: content.prompt,
      style: content.style,
      characterDescription: 'a lighthouse keeper',
      pages: content.pages.map((page) => ({ outline: '', sceneDescription: page.picture?.alt ?? '', characterSide: 'left', characterDistance: 'near' })),
    } as Parameters<InMemoryRepositories['saveBookOnce']>[0],
    sessionId,
  );
  for (const page of content.pages) {
    await repositories.savePageTextOnce(storyId, page.index, page.text);
    const key = `images/${randomUUID()}.png`;
    files.set(key, page.picture!.png);
    await repositories.saveImageOnce({
      id: randomUUID(),
      storyId,
      imageType: ImageType.COMBINED,
      pageIndex: page.index,
      filePath: key,
      width: SIZE,
      height: SIZE,
      promptUsed: '',
      seed: 1,
    });
  }
  const service = new BookExportService(
    repositories,
    repositories,
    media,
    { pdfPageSize: 'A5', renderer, cache: new RenderedBookCache(64 * 2 ** 20) },
    pino({ level: 'silent' }),
  );
  const start = performance.now();
  await service.export(storyId, 'PDF');
  const rendered = performance.now();
  await service.export(storyId, 'PDF');
  return { first: rendered - start, second: performance.now() - rendered };
}

const latin = books['Latin text'];
const mixed = books['Latin, Cyrillic and CJK text'];
// Fresh renderers: their first PDF reads and unpacks the fonts (the export thread's also starts the thread).
const mainThread = new InThreadBookRenderer(new FontFallback(bookFaces()));
const exportThread = new WorkerThreadBookRenderer({ threads: 1, logger: pino({ level: 'silent' }) });
const delays: { what: string; main: LoopDelay; thread: LoopDelay }[] = [
  {
    what: 'first PDF of the process (mixed-script book)',
    main: await loopDelay(mainThread, mixed, 'PDF', 1),
    thread: await loopDelay(exportThread, mixed, 'PDF', 1),
  },
];
for (const format of ['HTML', 'EPUB', 'PDF'] as const) {
  delays.push({
    what: `${format} (Latin book)`,
    main: await loopDelay(mainThread, latin, format, RUNS),
    thread: await loopDelay(exportThread, latin, format, RUNS),
  });
}
const download = await cachedDownload(exportThread, latin);
await exportThread.close();
const ms = (value: number) => `${value.toFixed(value < 10 ? 1 : 0)} ms`;

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
  `Main-thread event-loop delay during a render, on the main thread (before: the service called the exporters) and on the export thread (now: WorkerThreadBookRenderer, EXPORT_THREADS=1). p99: median over ${RUNS} renders of each one's p99; max: the largest of all; time: median render time as the caller sees it. The first row is one render on fresh renderers (fonts read and unpacked; for the thread also its start, from TypeScript through tsx here, from dist/*.js in production).`,
  '',
  '| render | main thread: p99 | max | time | export thread: p99 | max | time |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...delays.map(
    ({ what, main, thread }) =>
      `| ${what} | ${ms(main.p99)} | ${ms(main.max)} | ${ms(main.render)} | **${ms(thread.p99)}** | **${ms(thread.max)}** | ${ms(thread.render)} |`,
  ),
  '',
  `Download of the same PDF twice through BookExportService (EXPORT_CACHE_MB=64): first ${ms(download.first)} (read, key, render on the export thread), second **${ms(download.second)}** (the cached file).`,
  '',
  ...(process.env.BENCH_NOTE ? [process.env.BENCH_NOTE, ''] : []),
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
