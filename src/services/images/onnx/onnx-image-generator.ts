import { EventEmitter } from 'node:events';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import type { Logger } from '../../../logger.js';
import { ImageGenerationError, type GeneratedPicture, type ImageGenerationOptions, type ImageGenerator, type ImageRequest } from '../image-generator.js';
import type { DiffusionTimings } from './diffusion.js';
import { looksLikeModelDir, PULL_COMMAND } from './model-layout.js';
import { wallClock } from './tensor-math.js';
import type { FromWorker, GenerateMessage, ModelInfo } from './worker-protocol.js';

export interface OnnxImageSettings {
  modelDir: string;
  /** ORT_EXECUTION_PROVIDERS, in order of preference. */
  providers: string[];
  /** NUM_INFERENCE_STEPS / GUIDANCE_SCALE; unset: the model's defaults. */
  steps?: number;
  guidanceScale?: number;
}

/** What a finished job measured; benches and tests read it from onnxRuntimeEvents. */
export interface OnnxJobReport {
  modelDir: string;
  outcome: 'completed' | 'cancelled' | 'failed';
  stepsDone: number;
  totalSteps: number;
  timings?: DiffusionTimings;
  steps?: number;
  guidanceScale?: number;
  /** Wall-clock ms (performance.timeOrigin + now) of each denoising step, as the worker saw them. */
  stepWindows: [number, number][];
  /** Wall-clock ms when the cancel flag was set, and when the worker stopped on it. */
  cancelRequestedAt?: number;
  stoppedAt?: number;
}

/**
 * Process-wide notifications: 'loaded' (ModelInfo), 'step' ({ modelDir, done, total }),
 * 'job' (OnnxJobReport). For instrumentation and tests; nothing in the server depends on them.
 */
export const onnxRuntimeEvents = new EventEmitter();

/**
 * In-process Stable Diffusion. The model lives in one worker thread per process
 * (per model folder and provider list), loaded on first use and kept; every
 * generator pointing at the same folder shares it, and their jobs queue for it
 * one at a time, so two generations never hold two copies in GPU memory.
 */
export class OnnxImageGenerator implements ImageGenerator {
  readonly prefersBatches = true;
  readonly description: string;

  constructor(
    private readonly settings: OnnxImageSettings,
    private readonly logger: Logger,
  ) {
    this.description = `in-process Stable Diffusion (ONNX Runtime) from ${settings.modelDir}`;
    if (!looksLikeModelDir(settings.modelDir)) {
      logger.warn(
        `No Stable Diffusion model in ${settings.modelDir}: run \`${PULL_COMMAND}\` to download one (or set SD_MODEL_DIR); until then stories are text-only`,
      );
    }
  }

  async generate(requests: ImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    options.signal.throwIfAborted();
    if (requests.length === 0) return [];
    if (!looksLikeModelDir(this.settings.modelDir)) {
      throw new ImageGenerationError(
        `No Stable Diffusion model in ${this.settings.modelDir}: run \`${PULL_COMMAND}\` to download one (or point SD_MODEL_DIR at an ONNX export)`,
      );
    }
    return OnnxRuntimeHost.for(this.settings, this.logger).generate(requests, this.settings, options);
  }

  /** Unloads the model: its worker thread (and GPU memory) go; a later generate() loads it again. */
  close(): Promise<void> {
    return OnnxRuntimeHost.release(this.settings);
  }
}

/** FIFO mutex whose waiters can give up (a cancelled generation leaves the queue at once). */
class GpuLock {
  private held = false;
  private readonly waiters: { grant: () => void }[] = [];

  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.held) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          grant: () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(waiter);
      });
    }
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.grant();
      else this.held = false;
    };
  }
}

interface PendingJob {
  id: number;
  resolve: (result: Extract<FromWorker, { type: 'done' }>) => void;
  reject: (error: Error) => void;
  onProgress: (done: number, total: number) => void;
  stepsDone: number;
  totalSteps: number;
  stepWindows: [number, number][];
  cancelRequestedAt?: number;
}

const WORKER_ENTRY = new URL('./ort-worker-entry.mjs', import.meta.url);

/** One worker (and one copy of the model) per model folder and provider list, for the life of the process. */
export class OnnxRuntimeHost {
  private static readonly hosts = new Map<string, OnnxRuntimeHost>();

  private static key(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>): string {
    return `${path.resolve(settings.modelDir)}|${settings.providers.join(',')}`;
  }

  static for(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>, logger: Logger): OnnxRuntimeHost {
    const key = OnnxRuntimeHost.key(settings);
    let host = OnnxRuntimeHost.hosts.get(key);
    if (!host) {
      host = new OnnxRuntimeHost(path.resolve(settings.modelDir), settings.providers, logger);
      OnnxRuntimeHost.hosts.set(key, host);
    }
    return host;
  }

  static async release(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>): Promise<void> {
    const key = OnnxRuntimeHost.key(settings);
    const host = OnnxRuntimeHost.hosts.get(key);
    OnnxRuntimeHost.hosts.delete(key);
    await host?.terminate();
  }

  /** Stops every worker (tests and benches; a server keeps its model until it exits). */
  static async releaseAll(): Promise<void> {
    const hosts = [...OnnxRuntimeHost.hosts.values()];
    OnnxRuntimeHost.hosts.clear();
    await Promise.all(hosts.map((host) => host.terminate()));
  }

  private worker: Worker | null = null;
  private loading: Promise<ModelInfo> | null = null;
  private loadWaiter: { resolve: (info: ModelInfo) => void; reject: (error: Error) => void } | null = null;
  private job: PendingJob | null = null;
  private nextId = 1;
  private readonly lock = new GpuLock();
  info: ModelInfo | null = null;

  private constructor(
    readonly modelDir: string,
    private readonly providers: string[],
    private readonly logger: Logger,
  ) {}

  async generate(
    requests: ImageRequest[],
    settings: Pick<OnnxImageSettings, 'steps' | 'guidanceScale'>,
    options: ImageGenerationOptions,
  ): Promise<GeneratedPicture[]> {
    const { signal, onProgress } = options;
    const release = await this.lock.acquire(signal);
    try {
      await abortable(this.load(), signal);
      // Pictures of one size share a batch; the pipeline sends one size, so this is one run.
      const groups = groupBySize(requests);
      const pictures = new Map<ImageRequest, GeneratedPicture>();
      let finishedGroups = 0;
      for (const group of groups) {
        const result = await this.run(group, settings, signal, (done, total) => {
          onProgress?.(Math.min(0.99, (finishedGroups + done / (total + 1)) / groups.length));
        });
        finishedGroups++;
        const encoded = await Promise.all(
          result.images.map((image) =>
            sharp(Buffer.from(image.rgb.buffer, image.rgb.byteOffset, image.rgb.byteLength), { raw: { width: image.width, height: image.height, channels: 3 } })
              .png()
              .toBuffer(),
          ),
        );
        group.forEach((request, index) => pictures.set(request, { png: encoded[index], width: request.width, height: request.height, seed: request.seed }));
      }
      onProgress?.(1);
      return requests.map((request) => pictures.get(request)!);
    } finally {
      release();
    }
  }

  /** Loads the model once; a failed load is forgotten so the next call tries again (e.g. after `npm run models:pull`). */
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
        onnxRuntimeEvents.emit('loaded', info);
      },
      () => {
        this.loading = null;
        void this.terminate();
      },
    );
    worker.postMessage({ type: 'load', modelDir: this.modelDir, providers: this.providers });
    return this.loading;
  }

  private run(
    requests: ImageRequest[],
    settings: Pick<OnnxImageSettings, 'steps' | 'guidanceScale'>,
    signal: AbortSignal,
    onProgress: (done: number, total: number) => void,
  ): Promise<Extract<FromWorker, { type: 'done' }>> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new ImageGenerationError('The ONNX Runtime worker is not running'));
    const cancel = new SharedArrayBuffer(4);
    const flag = new Int32Array(cancel);
    const id = this.nextId++;
    // The worker stops before its next step; we wait for it so the lock is only released once it is idle.
    const onAbort = () => {
      Atomics.store(flag, 0, 1);
      if (this.job?.id === id) this.job.cancelRequestedAt = wallClock();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.ref();
    return new Promise<Extract<FromWorker, { type: 'done' }>>((resolve, reject) => {
      this.job = { id, resolve, reject, onProgress, stepsDone: 0, totalSteps: 0, stepWindows: [] };
      const message: GenerateMessage = {
        type: 'generate',
        id,
        requests: requests.map(({ prompt, negativePrompt, seed, width, height }) => ({ prompt, negativePrompt, seed, width, height })),
        steps: settings.steps,
        guidanceScale: settings.guidanceScale,
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

  private startWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_ENTRY);
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
          new ImageGenerationError(
            message.layout
              ? `The Stable Diffusion model in ${this.modelDir} cannot be used: ${message.message}`
              : `ONNX Runtime could not load the model in ${this.modelDir}: ${message.message}`,
          ),
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
        job.onProgress(message.done, message.total);
        onnxRuntimeEvents.emit('step', { modelDir: this.modelDir, done: message.done, total: message.total });
        return;
      case 'done':
        this.report({
          outcome: 'completed',
          stepsDone: message.timings.steps.length,
          totalSteps: message.timings.steps.length,
          timings: message.timings,
          steps: message.steps,
          guidanceScale: message.guidanceScale,
          stepWindows: job.stepWindows,
        });
        job.resolve(message);
        return;
      case 'cancelled':
        this.report({
          outcome: 'cancelled',
          stepsDone: message.stepsDone,
          totalSteps: job.totalSteps,
          stepWindows: job.stepWindows,
          cancelRequestedAt: job.cancelRequestedAt,
          stoppedAt: message.stoppedAt,
        });
        job.reject(new ImageGenerationError('cancelled'));
        return;
      case 'failed':
        this.report({ outcome: 'failed', stepsDone: job.stepsDone, totalSteps: job.totalSteps, stepWindows: job.stepWindows });
        job.reject(new ImageGenerationError(message.userError ? message.message : `In-process Stable Diffusion failed: ${message.message}`));
        return;
    }
  }

  private report(report: Omit<OnnxJobReport, 'modelDir'>): void {
    onnxRuntimeEvents.emit('job', { modelDir: this.modelDir, ...report } satisfies OnnxJobReport);
  }

  private onWorkerGone(why: string): void {
    const error = new ImageGenerationError(`The ONNX Runtime worker ${why}`);
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

  private async terminate(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.loading = null;
    this.info = null;
    if (worker) await worker.terminate();
  }
}

function groupBySize(requests: ImageRequest[]): ImageRequest[][] {
  const groups = new Map<string, ImageRequest[]>();
  for (const request of requests) {
    const key = `${request.width}x${request.height}`;
    groups.set(key, [...(groups.get(key) ?? []), request]);
  }
  return [...groups.values()];
}

/** Waits for a shared promise (the model load) unless the caller gives up first; the promise itself goes on. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
