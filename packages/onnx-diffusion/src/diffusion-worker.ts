import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { wallClock } from './clock.js';
import { JobOutcome, publishJob, publishLoaded, publishStep, type DiffusionJobReport } from './diagnostics.js';
import type { DiffusionRequest } from './diffusion.js';
import type { FromWorker, GenerateMessage, ModelInfo } from './worker-protocol.js';

/** Where the library's log lines go; a pino logger fits as it is. */
export interface DiffusionLogger {
  info(detail: Record<string, unknown>, message: string): void;
  warn(detail: Record<string, unknown>, message: string): void;
}

export interface DiffusionWorkerOptions {
  /** A Stable Diffusion export in the diffusers/Optimum ONNX layout. */
  modelDir: string;
  /** Execution providers to try, in order (see parseProviderList). */
  providers: readonly string[];
  logger: DiffusionLogger;
}

export interface DiffusionGenerateOptions {
  /** Unset: the model's default (DiffusionWorker.info.defaults). */
  steps?: number;
  guidanceScale?: number;
  /** Aborting stops the run before its next denoising step; generate() then rejects with signal.reason. */
  signal: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/** One batch's pictures as interleaved RGB bytes, in request order, and what the run measured. */
export type DiffusionOutput = Omit<Extract<FromWorker, { type: 'done' }>, 'type' | 'id'>;

export const DiffusionErrorCode = {
  /** The model folder is not a usable export (a file missing, malformed or of a shape the pipeline cannot drive). */
  ModelUnusable: 'MODEL_UNUSABLE',
  /** ONNX Runtime could not open the model (no execution provider, out of memory). */
  ModelLoadFailed: 'MODEL_LOAD_FAILED',
  /** The worker thread crashed or exited; the next load() starts a new one. */
  WorkerGone: 'WORKER_GONE',
  /** The request does not fit the model (a size or batch the export cannot make): the user can fix it. */
  BadRequest: 'BAD_REQUEST',
  /** ONNX Runtime failed during the run. */
  InferenceFailed: 'INFERENCE_FAILED',
} as const;
export type DiffusionErrorCode = (typeof DiffusionErrorCode)[keyof typeof DiffusionErrorCode];

export class DiffusionWorkerError extends Error {
  override name = 'DiffusionWorkerError';
  constructor(
    readonly code: DiffusionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface PendingJob {
  id: number;
  resolve: (result: DiffusionOutput) => void;
  reject: (error: Error) => void;
  onStep: (done: number, total: number) => void;
  stepsDone: number;
  totalSteps: number;
  stepWindows: [number, number][];
  cancelRequestedAt?: number;
}

/**
 * One model in one worker thread, driven from the main thread. onnxruntime-node's
 * session.run() runs the model synchronously on the calling thread, so the
 * sessions live in worker-thread.ts and the caller's event loop stays free.
 * One generation at a time: callers that share a DiffusionWorker queue for it.
 * Reports loads, steps and finished jobs on DIAGNOSTICS_CHANNELS.
 */
export class DiffusionWorker {
  /** Absolute model folder. */
  readonly modelDir: string;
  /** Set once the model is loaded; null again after the worker stops. */
  info: ModelInfo | null = null;
  private readonly providers: readonly string[];
  private readonly logger: DiffusionLogger;
  private worker: Worker | null = null;
  private loading: Promise<ModelInfo> | null = null;
  private loadWaiter: { resolve: (info: ModelInfo) => void; reject: (error: Error) => void } | null = null;
  private job: PendingJob | null = null;
  private nextId = 1;

  constructor(options: DiffusionWorkerOptions) {
    this.modelDir = path.resolve(options.modelDir);
    this.providers = options.providers;
    this.logger = options.logger;
  }

  /**
   * Starts the worker and loads the model, once; later calls share the same promise.
   * A failed load (DiffusionWorkerError MODEL_UNUSABLE or MODEL_LOAD_FAILED) is
   * forgotten, so the next call tries again (e.g. after the model was downloaded).
   */
  load(): Promise<ModelInfo> {
    if (this.loading) return this.loading;
    const worker = this.startWorker();
    this.loading = new Promise<ModelInfo>((resolve, reject) => {
      this.loadWaiter = { resolve, reject };
    });
    this.loading.then(
      (info) => {
        this.info = info;
        this.idle();
        const fallbacks = info.providers.unet !== this.providers[0] ? ` (asked for ${this.providers.join(',')})` : '';
        this.logger.info(
          { model: info.name, providers: info.providers, scheduler: info.scheduler, precision: info.precision, defaults: info.defaults, loadMs: info.loadMs },
          `Stable Diffusion loaded in-process on ${info.providers.unet}${fallbacks}`,
        );
        publishLoaded({ modelDir: this.modelDir, info });
      },
      () => {
        this.loading = null;
        void this.terminate();
      },
    );
    worker.postMessage({ type: 'load', modelDir: this.modelDir, providers: [...this.providers] });
    return this.loading;
  }

  /**
   * Paints one batch (all requests of one size) on the loaded model. Rejects with
   * signal.reason when aborted, with DiffusionWorkerError otherwise (BAD_REQUEST,
   * INFERENCE_FAILED, WORKER_GONE), or with a plain Error while another generation runs.
   */
  generate(requests: DiffusionRequest[], options: DiffusionGenerateOptions): Promise<DiffusionOutput> {
    const { signal } = options;
    if (this.job) return Promise.reject(new Error('DiffusionWorker runs one generation at a time; wait for the last one to settle'));
    if (signal.aborted) return Promise.reject(signal.reason);
    const worker = this.worker;
    if (!worker) return Promise.reject(new DiffusionWorkerError(DiffusionErrorCode.WorkerGone, 'The ONNX Runtime worker is not running'));
    const cancel = new SharedArrayBuffer(4);
    const flag = new Int32Array(cancel);
    const id = this.nextId++;
    // The worker stops before its next step; we wait for it so the caller only moves on once it is idle.
    const onAbort = () => {
      Atomics.store(flag, 0, 1);
      if (this.job?.id === id) this.job.cancelRequestedAt = wallClock();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.ref();
    return new Promise<DiffusionOutput>((resolve, reject) => {
      this.job = { id, resolve, reject, onStep: options.onStep ?? (() => undefined), stepsDone: 0, totalSteps: 0, stepWindows: [] };
      const message: GenerateMessage = {
        type: 'generate',
        id,
        requests: requests.map(({ prompt, negativePrompt, seed, width, height }) => ({ prompt, negativePrompt, seed, width, height })),
        steps: options.steps,
        guidanceScale: options.guidanceScale,
        cancel,
      };
      worker.postMessage(message);
    }).finally(() => {
      signal.removeEventListener('abort', onAbort);
      this.job = null;
      this.idle();
      if (signal.aborted) signal.throwIfAborted();
    });
  }

  /** Stops the worker thread and frees the model (and its GPU memory); a later load() starts afresh. */
  async terminate(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.loading = null;
    this.info = null;
    if (worker) await worker.terminate();
  }

  private startWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorkerThread();
    this.worker = worker;
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (error) => this.onWorkerGone(`crashed: ${error.message}`));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.onWorkerGone(`exited with code ${code}`);
    });
    return worker;
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'log':
        if (message.level === 'warn') this.logger.warn(message.detail ?? {}, message.message);
        else this.logger.info(message.detail ?? {}, message.message);
        return;
      case 'loaded':
        this.loadWaiter?.resolve(message.info);
        this.loadWaiter = null;
        return;
      case 'load-failed':
        this.loadWaiter?.reject(
          message.layout
            ? new DiffusionWorkerError(DiffusionErrorCode.ModelUnusable, `The Stable Diffusion model in ${this.modelDir} cannot be used: ${message.message}`)
            : new DiffusionWorkerError(DiffusionErrorCode.ModelLoadFailed, `ONNX Runtime could not load the model in ${this.modelDir}: ${message.message}`),
        );
        this.loadWaiter = null;
        return;
      default:
        break;
    }
    const job = this.job;
    if (!job || job.id !== message.id) return;
    switch (message.type) {
      case 'progress':
        job.stepsDone = message.done;
        job.totalSteps = message.total;
        job.stepWindows.push([message.startedAt, message.endedAt]);
        job.onStep(message.done, message.total);
        publishStep({ modelDir: this.modelDir, done: message.done, total: message.total });
        return;
      case 'done':
        this.report({
          outcome: JobOutcome.Completed,
          stepsDone: message.timings.steps.length,
          totalSteps: message.timings.steps.length,
          timings: message.timings,
          steps: message.steps,
          guidanceScale: message.guidanceScale,
          stepWindows: job.stepWindows,
        });
        job.resolve({ images: message.images, timings: message.timings, steps: message.steps, guidanceScale: message.guidanceScale });
        return;
      case 'cancelled':
        this.report({
          outcome: JobOutcome.Cancelled,
          stepsDone: message.stepsDone,
          totalSteps: job.totalSteps,
          stepWindows: job.stepWindows,
          cancelRequestedAt: job.cancelRequestedAt,
          stoppedAt: message.stoppedAt,
        });
        // Only an abort cancels a run, so generate() rejects with the signal's reason instead.
        job.reject(new Error('cancelled'));
        return;
      case 'failed':
        this.report({ outcome: JobOutcome.Failed, stepsDone: job.stepsDone, totalSteps: job.totalSteps, stepWindows: job.stepWindows });
        job.reject(
          message.userError
            ? new DiffusionWorkerError(DiffusionErrorCode.BadRequest, message.message)
            : new DiffusionWorkerError(DiffusionErrorCode.InferenceFailed, `In-process Stable Diffusion failed: ${message.message}`),
        );
        return;
    }
  }

  private report(report: Omit<DiffusionJobReport, 'modelDir'>): void {
    publishJob({ modelDir: this.modelDir, ...report });
  }

  private onWorkerGone(why: string): void {
    const error = new DiffusionWorkerError(DiffusionErrorCode.WorkerGone, `The ONNX Runtime worker ${why}`);
    this.worker = null;
    this.loading = null;
    this.info = null;
    this.loadWaiter?.reject(error);
    this.loadWaiter = null;
    this.job?.reject(error);
    this.job = null;
  }

  /** An idle worker must not keep the process alive (tests, CLI scripts); a busy one must. */
  private idle(): void {
    if (!this.job && this.worker) this.worker.unref();
  }
}

/**
 * Starts worker-thread's module from beside this file: compiled JavaScript runs
 * as it is; TypeScript source (vitest, tsx) needs tsx inside the thread, because
 * Node 20 does not carry a parent's module hooks into worker threads and tsx's
 * loader (--import tsx) registers itself on the main thread only.
 */
function startWorkerThread(): Worker {
  const fromSource = new URL(import.meta.url).pathname.endsWith('.ts');
  const entry = new URL(fromSource ? './worker-thread.ts' : './worker-thread.js', import.meta.url);
  if (!fromSource) return new Worker(entry);
  const tsx = import.meta.resolve('tsx/esm/api');
  const [api, file] = [JSON.stringify(tsx), JSON.stringify(entry.href)];
  return new Worker(`import(${api}).then(({ tsImport }) => tsImport(${file}, ${file}));`, { eval: true });
}
