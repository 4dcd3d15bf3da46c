import { Writable } from 'node:stream';
import path from 'node:path';
import { threadId as mainThreadId, type Worker } from 'node:worker_threads';
import pino from 'pino';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkerThreadBookRenderer } from '../../src/adapters/export/worker-thread-book-renderer.js';
import type { BookRenderer, BookRenderJob } from '../../src/ports/book-renderer.js';
import { FontFallback, bookFaces } from '../../src/services/export/book-fonts.js';
import type { BookForExport, ExportFormat } from '../../src/services/export/export-book.js';
import { InThreadBookRenderer } from '../../src/services/export/in-thread-book-renderer.js';
import type { PdfPageSize } from '../../src/services/export/pdf-exporter.js';
import { GenerationProgressDocument, StartGenerationDocument, StoryDocument } from '../../src/client/generated/graphql.js';
import { pdfInfo } from '../support/document-tools.js';
import { poppler, skipWithoutTool } from '../support/environment.js';
import { startFakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startTestServer } from '../support/test-server.js';

/** Every Worker the renderer starts, so a test can end one the way a crash would, and those that have exited. */
const { started, exited } = vi.hoisted(() => ({ started: [] as Worker[], exited: new Set<Worker>() }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:worker_threads')>();
  class RecordedWorker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      super(...args);
      started.push(this);
      this.once('exit', () => exited.add(this));
    }
  }
  return { ...actual, Worker: RecordedWorker };
});

const MODIFIED = new Date('2026-03-04T05:06:07Z');
const TEXTS = ['The fox counted the stars one by one.', 'Лиса считала звёзды.', '狐狸一颗一颗地数星星。きつね。'];

async function picture(seed: number): Promise<Buffer> {
  const pixels = Buffer.alloc(256 * 256 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * seed + (i >> 8)) % 251;
  return sharp(pixels, { raw: { width: 256, height: 256, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * A fresh book each call (a render on a thread takes over its pictures' memory), its
 * pictures in memory of their own as fs.readFile (the media store) gives them; sharp's
 * own Buffers cannot be transferred.
 */
async function book(): Promise<BookForExport> {
  return {
    id: '6f1c2b9e-3d4a-4b5c-8d7e-9f0a1b2c3d4e',
    title: 'The Fox & the Stars',
    prompt: 'a fox who counts the stars',
    style: null,
    createdAt: new Date('2026-01-02T03:04:05Z'),
    language: 'ja',
    pages: await Promise.all(
      TEXTS.map(async (text, index) => ({
        index,
        text,
        picture: { png: Buffer.from(new Uint8Array(await picture(index + 2)).buffer), width: 256, height: 256, alt: `Scene ${index + 1}` },
      })),
    ),
  };
}

async function job(format: ExportFormat, pdfPageSize: PdfPageSize = 'A5'): Promise<BookRenderJob> {
  return { book: await book(), format, pdfPageSize, modified: MODIFIED };
}

/** A debug logger whose lines the test reads: the renderer logs each render's thread. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const renderedOn = () => lines.filter((line) => line.msg === 'export rendered').map((line) => line.threadId as number);
  return { logger: pino({ level: 'debug' }, stream), lines, renderedOn };
}

let renderer: BookRenderer | null = null;
afterEach(async () => {
  await renderer?.close();
  renderer = null;
  started.length = 0;
  exited.clear();
});

describe('the export thread (WorkerThreadBookRenderer)', () => {
  it('makes byte for byte the files the exporters make on this thread, on another thread, and takes over the pictures', async () => {
    const { logger, renderedOn } = recordingLogger();
    renderer = new WorkerThreadBookRenderer({ threads: 1, logger });
    const here = new InThreadBookRenderer(new FontFallback(bookFaces()));
    for (const [format, size] of [
      ['HTML', 'A5'],
      ['EPUB', 'A5'],
      ['PDF', 'A5'],
      ['PDF', 'LETTER'],
    ] as const) {
      const sent = await job(format, size);
      const pictures = sent.book.pages.map((page) => page.picture!.png);
      const file = await renderer.render(sent);
      expect(file.bytes.equals((await here.render(await job(format, size))).bytes), `${format} ${size}`).toBe(true);
      expect(file.missingCharacters).toEqual([]);
      // Transferred, not copied: the caller's Buffers are empty now.
      expect(pictures.map((png) => png.byteLength)).toEqual([0, 0, 0]);
    }
    const threads = renderedOn();
    expect(threads).toHaveLength(4);
    expect(new Set(threads).size).toBe(1);
    expect(threads[0]).not.toBe(mainThreadId);
  });

  it('renders at most `threads` books at once: three jobs share one thread, two threads take two jobs side by side', async () => {
    const one = recordingLogger();
    renderer = new WorkerThreadBookRenderer({ threads: 1, logger: one.logger });
    const files = await Promise.all([job('PDF'), job('EPUB'), job('HTML')].map(async (next) => renderer!.render(await next)));
    expect(files.map((file) => file.bytes.length > 0)).toEqual([true, true, true]);
    expect(started).toHaveLength(1);
    expect(new Set(one.renderedOn()).size).toBe(1);
    await renderer.close();

    started.length = 0;
    const two = recordingLogger();
    renderer = new WorkerThreadBookRenderer({ threads: 2, logger: two.logger });
    const [first, second] = [await job('PDF'), await job('PDF')];
    await Promise.all([renderer.render(first), renderer.render(second)]);
    expect(started).toHaveLength(2);
    expect(new Set(two.renderedOn()).size).toBe(2);
  });

  it("turns an exporter's error into the caller's rejection, and the thread goes on rendering", async () => {
    const { logger, renderedOn } = recordingLogger();
    renderer = new WorkerThreadBookRenderer({ threads: 1, logger });
    await expect(renderer.render(await job('PDF', 'B5' as PdfPageSize))).rejects.toThrow(/^Rendering the PDF file failed: /);
    await renderer.render(await job('HTML'));
    expect(started).toHaveLength(1);
    expect(renderedOn()).toHaveLength(1);
  });

  it('rejects the job of a thread that dies, and renders the next job on a new thread', async () => {
    const { logger, lines, renderedOn } = recordingLogger();
    renderer = new WorkerThreadBookRenderer({ threads: 1, logger });
    const first = await job('PDF');
    const waiting = await job('HTML');
    const dying = renderer.render(first);
    const queued = renderer.render(waiting);
    expect(started).toHaveLength(1);
    await started[0].terminate();
    await expect(dying).rejects.toThrow(/^The export thread exited with code \d+ while rendering the PDF file$/);
    // The job queued behind it gets a new thread.
    expect((await queued).bytes.subarray(0, 15).toString()).toBe('<!doctype html>');
    expect(started).toHaveLength(2);
    expect(renderedOn()).toHaveLength(1);
    expect(lines.some((line) => line.msg === 'export thread gone; the next render starts a new one')).toBe(true);
  });

  it('on close rejects what is queued, ends its thread and refuses new jobs', async () => {
    const { logger } = recordingLogger();
    const closing = new WorkerThreadBookRenderer({ threads: 1, logger });
    await closing.render(await job('HTML'));
    const [pdf, epub] = [await job('PDF'), await job('EPUB')];
    const running = expect(closing.render(pdf)).rejects.toThrow('The book renderer closed before this book was rendered');
    const queued = expect(closing.render(epub)).rejects.toThrow('The book renderer closed before this book was rendered');
    const exited = new Promise<void>((resolve) => started[0].once('exit', () => resolve()));
    await closing.close();
    await Promise.all([running, queued, exited]);
    await expect(closing.render(await job('HTML'))).rejects.toThrow('The book renderer is closed');
  });
});

describe('the export thread from compiled JavaScript (dist/, as production runs it)', () => {
  it('starts its thread from the .js beside it and renders a PDF', async (context) => {
    skipWithoutTool(poppler, context);
    // The integration lane's global set-up built dist/server from these sources.
    const compiled = path.resolve(import.meta.dirname, '../../dist/server/src/adapters/export/worker-thread-book-renderer.js');
    const { WorkerThreadBookRenderer: Compiled } = (await import(compiled)) as typeof import('../../src/adapters/export/worker-thread-book-renderer.js');
    const { logger, renderedOn } = recordingLogger();
    renderer = new Compiled({ threads: 1, logger });
    const file = await renderer.render(await job('PDF'));
    expect(started).toHaveLength(1);
    expect(renderedOn()).toHaveLength(1);
    expect(await pdfInfo(file.bytes)).toMatchObject({ Pages: String(TEXTS.length + 1), Title: 'The Fox & the Stars' });
  });
});

describe('the export thread in the server', () => {
  it('renders downloads on a thread that the server ends when it stops', async () => {
    const ollama = await startFakeOllama();
    const a1111 = await startFakeAutomatic1111();
    const server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '128', IMAGE_HEIGHT: '96' } });
    try {
      const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper', pageCount: 2 } });
      const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
      const { story } = await server.query(StoryDocument, { id: events.at(-1)!.generationProgress.storyId! });
      // No thread until the first download.
      expect(started).toHaveLength(0);
      const response = await fetch(story!.pdfUrl);
      expect(response.status).toBe(200);
      expect(
        Buffer.from(await response.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe('%PDF-');
      expect(started).toHaveLength(1);
      expect(exited.size).toBe(0);
    } finally {
      await server.stop();
      await Promise.all([ollama.close(), a1111.close()]);
    }
    expect(exited.has(started[0])).toBe(true);
  });
});
