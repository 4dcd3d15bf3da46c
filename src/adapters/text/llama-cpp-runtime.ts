import fs from 'node:fs/promises';
import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
} from 'node-llama-cpp';
import type { Logger } from '../../logger.js';
import { TextGenerationError } from '../../ports/text-generator.js';
import { physicalCoreCount } from './physical-cores.js';

/** The GPU back-ends llama.cpp may use; `off` keeps everything on the CPU. */
type EmbeddedGpu = 'auto' | 'off' | 'cuda' | 'vulkan' | 'metal';

export interface EmbeddedModelSettings {
  /** A GGUF file. */
  modelFile: string;
  /** CPU threads for evaluation; undefined: the physical cores (physicalCoreCount). */
  threads: number | undefined;
  /** Tokens the model sees at once: prompt and answer together. */
  contextSize: number;
  gpu: EmbeddedGpu;
}

/** What a loaded model offers a generation: its one sequence, for as long as the generation holds its turn. */
export interface LlamaTurn {
  sequence: LlamaContextSequence;
  /** How this model's chat template formats a conversation, resolved once at load. */
  chatWrapper: ChatWrapper;
  /** The grammar for a JSON Schema (built once per schema, then reused). */
  grammarFor(schema: Record<string, unknown>): Promise<LlamaGrammar>;
}

/**
 * llama.cpp's native library is one per process: node-llama-cpp's Llama is made once (per GPU
 * setting) and never disposed, since a disposed one cannot be made again in the same process.
 * Models and contexts come and go on it.
 */
const llamas = new Map<EmbeddedGpu, Promise<Llama>>();
/** Whoever is loading a model hears llama.cpp's log lines (its loader explains failures only there). */
const nativeLogListeners = new Set<(level: LlamaLogLevel, message: string) => void>();

function sharedLlama(gpu: EmbeddedGpu): Promise<Llama> {
  let llama = llamas.get(gpu);
  if (!llama) {
    llama = getLlama({
      gpu: gpu === 'off' ? false : gpu,
      // Only the prebuilt binaries npm installed: never compile llama.cpp, never download anything.
      build: 'never',
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      // Threads are set per context (EMBEDDED_THREADS).
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        for (const listener of nativeLogListeners) listener(level, message);
      },
    });
    llama.catch(() => llamas.delete(gpu));
    llamas.set(gpu, llama);
  }
  return llama;
}

interface Loaded {
  llama: Llama;
  model: LlamaModel;
  sequence: LlamaContextSequence;
  chatWrapper: ChatWrapper;
}

const GGUF_MAGIC = 'GGUF';
/** Longest wait for llama.cpp's reason after a failed load. */
const NATIVE_LOG_WAIT_MS = 500;

/**
 * One GGUF model in this process through node-llama-cpp (llama.cpp's prebuilt
 * binaries; inference runs on native threads, the event loop only receives
 * tokens). Loaded at the first generation, then kept and reused. A failed
 * load is not cached: a file downloaded since is picked up by the next try.
 *
 * Generations take turns (first come, first served) on one context with one
 * sequence: on a CPU two at once would share the same cores and each take
 * twice as long, and every sequence needs its own KV cache. A caller cancelled
 * while waiting for its turn leaves the line at once.
 *
 * Nothing is ever downloaded or compiled: `build: 'never'` uses the prebuilt
 * binary npm installed (@node-llama-cpp/<platform>), with or without its
 * postinstall script.
 */
export class LlamaCppRuntime {
  private loading: Promise<Loaded> | null = null;
  private busy = false;
  private readonly waiting: (() => void)[] = [];
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  /** The first error llama.cpp logged while loading: its loader says why a file is unusable only there. */
  private lastNativeError = '';

  constructor(
    readonly settings: EmbeddedModelSettings,
    private readonly logger: Logger,
  ) {}

  /** Throws TextGenerationError 'model-missing' when the model file is absent or not a GGUF file; cheap (reads 4 bytes). */
  async checkFile(): Promise<void> {
    const { modelFile } = this.settings;
    let magic: string;
    try {
      const handle = await fs.open(modelFile, 'r');
      try {
        const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
        magic = buffer.subarray(0, bytesRead).toString('latin1');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw modelMissing(modelFile);
      throw new TextGenerationError(
        `The embedded model file ${modelFile} cannot be read (${(error as Error).message}); check its permissions or set EMBEDDED_MODEL_FILE`,
        'model-missing',
        { cause: error },
      );
    }
    if (magic !== GGUF_MAGIC) throw unusableModel(modelFile, 'it does not start with the GGUF signature');
  }

  /**
   * Runs `work` when it is this caller's turn, with the loaded model. Rejects
   * with `signal.reason` when cancelled while waiting, and with a
   * TextGenerationError when the model cannot be loaded.
   */
  async withTurn<T>(signal: AbortSignal, work: (turn: LlamaTurn) => Promise<T>): Promise<T> {
    await this.acquire(signal);
    try {
      const loaded = await this.load();
      signal.throwIfAborted();
      return await work({ sequence: loaded.sequence, chatWrapper: loaded.chatWrapper, grammarFor: (schema) => this.grammarFor(loaded.llama, schema) });
    } finally {
      this.release();
    }
  }

  /**
   * Frees the model once the turn running now (and those already waiting) is over, without
   * cutting a generation short; the next turn loads it again. Nothing happens when none is loaded.
   */
  async unload(): Promise<void> {
    if (!this.loading) return;
    await this.acquire(new AbortController().signal);
    try {
      await this.close();
    } finally {
      this.release();
    }
  }

  /** Frees the model and its context; later calls load it again. */
  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = null;
    this.grammars.clear();
    const loaded = await loading?.catch(() => null);
    await loaded?.model.dispose();
  }

  private acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const take = () => {
        signal.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(take), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', leave, { once: true });
      this.waiting.push(take);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }

  private load(): Promise<Loaded> {
    this.loading ??= this.loadModel().catch((error: unknown) => {
      this.loading = null;
      throw error;
    });
    return this.loading;
  }

  private async loadModel(): Promise<Loaded> {
    await this.checkFile();
    const { modelFile, contextSize, gpu } = this.settings;
    const threads = this.settings.threads ?? physicalCoreCount();
    const started = performance.now();
    const llama = await sharedLlama(gpu).catch((error: unknown) => {
      throw new TextGenerationError(
        `llama.cpp could not be started for the embedded model (${(error as Error).name}: ${(error as Error).message}); ${gpuHint(gpu)}`,
        'model-missing',
        {
          cause: error,
        },
      );
    });
    const listener = (level: LlamaLogLevel, message: string) => this.nativeLog(level, message);
    nativeLogListeners.add(listener);
    try {
      this.lastNativeError = '';
      const model = await llama.loadModel({ modelPath: modelFile }).catch(async (error: unknown) => {
        throw unusableModel(modelFile, (await this.nativeErrorSince()) || (error as Error).message, error);
      });
      const context = await model.createContext({ contextSize, sequences: 1, threads }).catch(async (error: unknown) => {
        await model.dispose();
        throw error;
      });
      // Matching the model's Jinja chat template to a known format runs synchronously for up to a second or two:
      // once here, not per reply (a LlamaChat left to resolve it would block the event loop every time).
      const chatWrapper = resolveChatWrapper(model);
      this.logger.info(
        {
          modelFile,
          chatFormat: chatWrapper.wrapperName,
          gpu: llama.gpu || 'none',
          threads,
          contextSize: context.contextSize,
          seconds: Math.round(performance.now() - started) / 1000,
        },
        'embedded text model loaded',
      );
      return { llama, model, sequence: context.getSequence(), chatWrapper };
    } catch (error) {
      if (error instanceof TextGenerationError) throw error;
      throw new TextGenerationError(`The embedded model ${modelFile} could not be started: ${(error as Error).message}`, 'model-missing', { cause: error });
    } finally {
      nativeLogListeners.delete(listener);
    }
  }

  private grammarFor(llama: Llama, schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      // zod's JSON Schema (objects, strings with lengths, enums, arrays with item counts) is within what
      // node-llama-cpp's GbnfJsonSchema supports; its type is too precise to name a schema known only at run time.
      grammar = llama.createGrammarForJsonSchema(schema as never);
      this.grammars.set(key, grammar);
    }
    return grammar;
  }

  /** llama.cpp's log lines reach JavaScript a moment after the failure they explain: wait for one (briefly). */
  private async nativeErrorSince(): Promise<string> {
    for (let wait = 0; wait < NATIVE_LOG_WAIT_MS && this.lastNativeError === ''; wait += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    return this.lastNativeError;
  }

  private nativeLog(level: LlamaLogLevel, message: string): void {
    const text = message.trim();
    if (text === '') return;
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
      // The first error says why; the lines after it say that loading failed.
      if (this.lastNativeError === '') this.lastNativeError = text.replace(/^[\w:]+: (error loading model: )?/, '');
      this.logger.debug({ llama: text }, 'llama.cpp error');
    } else {
      this.logger.debug({ llama: text }, 'llama.cpp');
    }
  }
}

/** What to do when llama.cpp's binary for `gpu` does not load. */
function gpuHint(gpu: EmbeddedGpu): string {
  switch (gpu) {
    case 'cuda':
    case 'vulkan':
      return `EMBEDDED_GPU=${gpu} needs its binaries (\`npm run install:llama-gpu -- ${gpu}\`) and a working GPU driver; or set EMBEDDED_GPU=auto`;
    case 'metal':
      return 'EMBEDDED_GPU=metal needs macOS on Apple silicon; or set EMBEDDED_GPU=auto';
    default:
      return 'reinstall the dependencies with `npm ci`';
  }
}

function modelMissing(modelFile: string): TextGenerationError {
  return new TextGenerationError(
    `The embedded story model is not downloaded yet: ${modelFile} is missing. Run \`story-agent setup\` or press Download on the page (or set EMBEDDED_MODEL_FILE to a GGUF model you have, or use Ollama: TEXT_BACKEND=ollama)`,
    'model-missing',
  );
}

function unusableModel(modelFile: string, detail: string, cause?: unknown): TextGenerationError {
  return new TextGenerationError(
    `The embedded model file ${modelFile} is not a usable GGUF model (${detail}): it is damaged or incomplete. Delete it and download it again (\`story-agent setup\`, or Download on the page), or set EMBEDDED_MODEL_FILE to another GGUF file`,
    'model-missing',
    { cause },
  );
}
