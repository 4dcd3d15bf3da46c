import path from 'node:path';
import sharp from 'sharp';
import {
  ClipTokenizer,
  DiffusionWorker,
  DiffusionWorkerError,
  looksLikeModelDir,
  PULL_COMMAND,
  type DiffusionOutput,
  type ModelInfo,
} from '../../../packages/onnx-diffusion/src/index.js';
import type { Logger } from '../../logger.js';
import {
  ImageGenerationError,
  type GeneratedPicture,
  type ImageGenerationOptions,
  type ImageGenerator,
  type ImageRequest,
} from '../../ports/image-generator.js';

export interface OnnxImageSettings {
  modelDir: string;
  /** ORT_EXECUTION_PROVIDERS, in order of preference. */
  providers: string[];
  /** NUM_INFERENCE_STEPS / GUIDANCE_SCALE; unset: the model's defaults. */
  steps?: number;
  guidanceScale?: number;
}

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
    // CLIP reads 75 tokens and silently drops the rest: cut at a word here, so the picture records
    // what the model saw and the session can say what was left out.
    const tokenizer = this.promptTokenizer();
    const fitted = requests.map((request) => ({ request, fit: tokenizer.fit(request.prompt) }));
    const pictures = await OnnxRuntimeHost.for(this.settings, this.logger).generate(
      fitted.map(({ request, fit }) => (fit.truncated ? { ...request, prompt: fit.text } : request)),
      this.settings,
      options,
    );
    return pictures.map((picture, index) => {
      const { fit } = fitted[index];
      if (!fit.truncated) return picture;
      const room = tokenizer.maxLength - 2;
      return {
        ...picture,
        promptUsed: fit.text,
        warnings: [`A picture prompt was ${fit.tokenCount} CLIP tokens; the model reads ${room}, so it painted only "${fit.text}"`],
      };
    });
  }

  private tokenizer: ClipTokenizer | null = null;

  /** The model's own CLIP tokenizer (tokenizer/ in the model folder), read once. */
  private promptTokenizer(): ClipTokenizer {
    try {
      this.tokenizer ??= ClipTokenizer.fromDirectory(path.join(this.settings.modelDir, 'tokenizer'));
    } catch (error) {
      // A broken model folder: the same words the model loader would use, as an image failure the pipeline reports.
      throw new ImageGenerationError((error as Error).message, { cause: error });
    }
    return this.tokenizer;
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

/**
 * One DiffusionWorker (one worker thread, one copy of the model) per model folder
 * and provider list, for the life of the process; its generations queue on a lock.
 */
export class OnnxRuntimeHost {
  private static readonly hosts = new Map<string, OnnxRuntimeHost>();

  private static key(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>): string {
    return `${path.resolve(settings.modelDir)}|${settings.providers.join(',')}`;
  }

  static for(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>, logger: Logger): OnnxRuntimeHost {
    const key = OnnxRuntimeHost.key(settings);
    let host = OnnxRuntimeHost.hosts.get(key);
    if (!host) {
      host = new OnnxRuntimeHost(new DiffusionWorker({ modelDir: settings.modelDir, providers: settings.providers, logger }));
      OnnxRuntimeHost.hosts.set(key, host);
    }
    return host;
  }

  static async release(settings: Pick<OnnxImageSettings, 'modelDir' | 'providers'>): Promise<void> {
    const key = OnnxRuntimeHost.key(settings);
    const host = OnnxRuntimeHost.hosts.get(key);
    OnnxRuntimeHost.hosts.delete(key);
    await host?.engine.terminate();
  }

  /** Stops every worker (tests and benches; a server keeps its model until it exits). */
  static async releaseAll(): Promise<void> {
    const hosts = [...OnnxRuntimeHost.hosts.values()];
    OnnxRuntimeHost.hosts.clear();
    await Promise.all(hosts.map((host) => host.engine.terminate()));
  }

  private readonly lock = new GpuLock();

  private constructor(private readonly engine: DiffusionWorker) {}

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
        for (const [index, request] of group.entries()) {
          pictures.set(request, { png: encoded[index], width: request.width, height: request.height, seed: request.seed });
        }
      }
      onProgress?.(1);
      return requests.map((request) => {
        const picture = pictures.get(request);
        if (!picture) throw new ImageGenerationError('The model returned fewer pictures than were asked for');
        return picture;
      });
    } finally {
      release();
    }
  }

  /** Loads the model once; a failed load is forgotten so the next call tries again (e.g. after `npm run models:pull`). */
  load(): Promise<ModelInfo> {
    return this.engine.load().catch((error: unknown) => {
      throw asImageError(error);
    });
  }

  private run(
    requests: ImageRequest[],
    settings: Pick<OnnxImageSettings, 'steps' | 'guidanceScale'>,
    signal: AbortSignal,
    onStep: (done: number, total: number) => void,
  ): Promise<DiffusionOutput> {
    return this.engine.generate(requests, { steps: settings.steps, guidanceScale: settings.guidanceScale, signal, onStep }).catch((error: unknown) => {
      throw asImageError(error);
    });
  }
}

/** The engine's errors carry messages a user can act on; the pipeline reports ImageGenerationError as a warning. */
function asImageError(error: unknown): unknown {
  return error instanceof DiffusionWorkerError ? new ImageGenerationError(error.message, { cause: error }) : error;
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
