import { parentPort, threadId } from 'node:worker_threads';
import { FontFallback, bookFaces } from '../../services/export/book-fonts.js';
import { InThreadBookRenderer } from '../../services/export/in-thread-book-renderer.js';
import { asBuffer, type RenderReply, type RenderRequest, transferableBuffers } from './render-thread-protocol.js';

/**
 * The export thread: renders the books WorkerThreadBookRenderer sends, one at a time, with
 * fonts of its own (read once, on the first PDF that needs them), so pdfkit's layout,
 * yazl's deflate and the HTML's base64 hold this thread instead of the server's event loop.
 */
if (!parentPort) throw new Error('book-render-thread.ts must run as a worker thread (WorkerThreadBookRenderer starts it)');
const port = parentPort;
const renderer = new InThreadBookRenderer(new FontFallback(bookFaces()));

port.on('message', (request: RenderRequest) => {
  void render(request);
});

async function render({ id, job }: RenderRequest): Promise<void> {
  const startedAt = performance.now();
  try {
    const book = {
      ...job.book,
      pages: job.book.pages.map((page) => ({ ...page, picture: page.picture ? { ...page.picture, png: asBuffer(page.picture.png) } : null })),
    };
    const { bytes, missingCharacters } = await renderer.render({ ...job, book });
    const reply: RenderReply = { type: 'done', id, bytes, missingCharacters, threadId, renderMs: performance.now() - startedAt };
    port.postMessage(reply, transferableBuffers([bytes]));
  } catch (error) {
    const reply: RenderReply = { type: 'failed', id, message: error instanceof Error ? error.message : String(error) };
    port.postMessage(reply);
  }
}
