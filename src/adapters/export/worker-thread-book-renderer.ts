import { Worker } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import type { BookRenderer, BookRenderJob, RenderedBookFile } from '../../ports/book-renderer.js';
import { asBuffer, type RenderReply, type RenderRequest, transferableBuffers } from './render-thread-protocol.js';

export interface WorkerThreadBookRendererOptions {
  /** Books rendered at once, each on a thread of its own (EXPORT_THREADS, ≥ 1); further jobs wait in order. */
  threads: number;
  logger: Logger;
}

interface Waiting {
  job: BookRenderJob;
  resolve: (file: RenderedBookFile) => void;
  reject: (error: Error) => void;
}

/** One thread and the job it renders; threads start on their first job and after a crash on the next. */
interface Lane {
  worker: Worker | null;
  running: (Waiting & { id: number }) | null;
}

/**
 * Renders books on worker threads (book-render-thread.ts), so a PDF's second of layout
 * holds a thread of its own and the server's event loop keeps answering requests,
 * subscriptions and token streams. At most `threads` renders run at once; the rest
 * queue. Pictures travel to the thread and files back as transferred memory where the
 * Buffer owns it. A render that throws in the thread rejects with its message; a thread
 * that dies rejects its job and is replaced by the next job.
 * Idle threads do not keep the process alive.
 */
export class WorkerThreadBookRenderer implements BookRenderer {
  private readonly lanes: Lane[];
  private readonly waiting: Waiting[] = [];
  private closed = false;
  private nextId = 1;

  constructor(private readonly options: WorkerThreadBookRendererOptions) {
    this.lanes = Array.from({ length: Math.max(1, options.threads) }, () => ({ worker: null, running: null }));
  }

  render(job: BookRenderJob): Promise<RenderedBookFile> {
    if (this.closed) return Promise.reject(new Error('The book renderer is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const stopped = new Error('The book renderer closed before this book was rendered');
    for (const waiting of this.waiting.splice(0)) waiting.reject(stopped);
    const workers: Worker[] = [];
    for (const lane of this.lanes) {
      if (lane.worker) workers.push(lane.worker);
      lane.worker = null;
      lane.running?.reject(stopped);
      lane.running = null;
    }
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private dispatch(): void {
    for (const lane of this.lanes) {
      if (this.closed || lane.running) continue;
      const next = this.waiting.shift();
      if (!next) return;
      this.start(lane, next);
    }
  }

  private start(lane: Lane, waiting: Waiting): void {
    const worker = lane.worker ?? this.spawn(lane);
    const id = this.nextId++;
    lane.running = { ...waiting, id };
    worker.ref();
    const request: RenderRequest = { id, job: waiting.job };
    const pictures = waiting.job.book.pages.flatMap((page) => (page.picture ? [page.picture.png] : []));
    try {
      worker.postMessage(request, transferableBuffers(pictures));
    } catch (error) {
      // A job that cannot be sent (a value structured clone refuses) fails alone; the thread stays.
      lane.running = null;
      waiting.reject(error as Error);
      this.idle(lane);
      queueMicrotask(() => this.dispatch());
    }
  }

  private spawn(lane: Lane): Worker {
    const worker = startRenderThread();
    lane.worker = worker;
    worker.on('message', (reply: RenderReply) => this.onReply(lane, reply));
    worker.on('error', (error) => this.onThreadGone(lane, worker, `crashed: ${error.message}`));
    worker.on('exit', (code) => this.onThreadGone(lane, worker, `exited with code ${code}`));
    return worker;
  }

  private onReply(lane: Lane, reply: RenderReply): void {
    const running = lane.running;
    if (!running || running.id !== reply.id) return;
    lane.running = null;
    const { format } = running.job;
    if (reply.type === 'done') {
      this.options.logger.debug(
        { format, storyId: running.job.book.id, threadId: reply.threadId, renderMs: Math.round(reply.renderMs), bytes: reply.bytes.byteLength },
        'export rendered',
      );
      running.resolve({ bytes: asBuffer(reply.bytes), missingCharacters: reply.missingCharacters });
    } else {
      running.reject(new Error(`Rendering the ${format} file failed: ${reply.message}`));
    }
    this.idle(lane);
    this.dispatch();
  }

  private onThreadGone(lane: Lane, worker: Worker, why: string): void {
    if (lane.worker !== worker) return;
    lane.worker = null;
    void worker.terminate();
    const running = lane.running;
    lane.running = null;
    this.options.logger.warn({ why, format: running?.job.format }, 'export thread gone; the next render starts a new one');
    running?.reject(new Error(`The export thread ${why} while rendering the ${running.job.format} file`));
    this.dispatch();
  }

  /** An idle thread must not keep the process alive (tests, CLI scripts); a busy one must. */
  private idle(lane: Lane): void {
    if (!lane.running) lane.worker?.unref();
  }
}

/**
 * Starts book-render-thread's module from beside this file: compiled JavaScript (dist/,
 * production) runs as it is; TypeScript source (vitest, tsx) needs tsx inside the
 * thread, because Node 20 does not carry a parent's module hooks into worker threads.
 * The same way as packages/onnx-diffusion's DiffusionWorker.
 */
function startRenderThread(): Worker {
  const fromSource = new URL(import.meta.url).pathname.endsWith('.ts');
  const entry = new URL(fromSource ? './book-render-thread.ts' : './book-render-thread.js', import.meta.url);
  if (!fromSource) return new Worker(entry);
  const tsx = import.meta.resolve('tsx/esm/api');
  const [api, file] = [JSON.stringify(tsx), JSON.stringify(entry.href)];
  return new Worker(`import(${api}).then(({ tsImport }) => tsImport(${file}, ${file}));`, { eval: true });
}
