import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './project-root.js';
import { DEFAULT_PROVIDERS, looksLikeModelDir, parseProviderList } from '../packages/onnx-diffusion/src/index.js';
import { defaultModel, ModelRole } from './services/setup/model-catalog.js';

/**
 * Every setting the server reads, validated once at start-up. Each variable is
 * documented in README.md ("Configuration") with the same default as here.
 */

const booleanish = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

const httpUrl = z
  .string()
  .url()
  .refine((value) => /^https?:\/\//.test(value), 'must be an http:// or https:// URL')
  .transform((value) => value.replace(/\/+$/, ''));

/** Every TEXT_BACKEND name (metric labels list them all). */
export const TEXT_BACKENDS = ['ollama', 'openai', 'embedded'] as const;
export type TextBackendName = (typeof TEXT_BACKENDS)[number];

/** The longest delay Node's timers keep (2^31 − 1 ms, about 24.8 days): a longer one fires after 1 ms, so a millisecond setting above it would make its timer fire at once, over and over. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PUBLIC_BASE_URL: httpUrl
    .refine((value) => !/[?#]/.test(value), 'must be a base URL without a query or fragment, e.g. https://stories.example or https://example.org/stories')
    .optional(),
  PUBLIC_URLS: z.enum(['absolute', 'relative']).default('absolute'),
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((value, context): TrustProxy => {
      const trimmed = value.trim();
      if (trimmed === 'false' || trimmed === '') return false;
      if (trimmed === 'true') return true;
      if (/^\d+$/.test(trimmed)) return Number(trimmed);
      const entries = trimmed.split(',').map((entry) => entry.trim());
      for (const entry of entries) {
        const [address, bits, ...rest] = entry.split('/');
        const named = ['loopback', 'linklocal', 'uniquelocal'].includes(entry);
        if (!named && (rest.length > 0 || isIP(address) === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits)))) {
          context.addIssue({ code: 'custom', message: `"${entry}" is not an address, a subnet (10.0.0.0/8), loopback, linklocal or uniquelocal` });
          return z.NEVER;
        }
      }
      return entries;
    }),

  DATA_DIR: z.string().min(1).default('./data'),
  MEDIA_DIR: z.string().min(1).optional(),
  DATABASE_URL: z
    .string()
    .refine((value) => /^postgres(ql)?:\/\//.test(value), 'must be a postgres:// or postgresql:// URL')
    .optional(),
  // Two at least: the migration and media-sweep locks hold a connection of their own while their work runs on another.
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),

  OLLAMA_BASE_URL: httpUrl.default('http://127.0.0.1:11434'),
  OLLAMA_MODEL: z.string().min(1).default('llama3.2'),
  OLLAMA_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.8),
  OLLAMA_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(MAX_TIMER_MS).default(300_000),
  STORY_MAX_CHARS: z.coerce.number().int().min(200).max(50_000).default(6000),
  TEXT_BACKEND: z.enum(TEXT_BACKENDS).optional(),
  OLLAMA_RECHECK_MS: z.coerce.number().int().min(0).max(3_600_000).default(5000),
  HF_ENDPOINT: httpUrl.default('https://huggingface.co'),
  HF_TOKEN: z.string().min(1).optional(),
  HUGGING_FACE_HUB_TOKEN: z.string().min(1).optional(),
  OPENAI_BASE_URL: httpUrl.optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_MODEL: z.string().min(1).optional(),
  OPENAI_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.8),
  OPENAI_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(MAX_TIMER_MS).default(300_000),
  EMBEDDED_MODEL_FILE: z.string().min(1).optional(),
  EMBEDDED_THREADS: z.coerce.number().int().min(1).max(1024).optional(),
  EMBEDDED_CONTEXT_SIZE: z.coerce.number().int().min(512).max(131_072).default(4096),
  EMBEDDED_GPU: z.enum(['auto', 'off', 'cuda', 'vulkan', 'metal']).default('auto'),
  EMBEDDED_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.8),
  EMBEDDED_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(MAX_TIMER_MS).default(300_000),
  EMBEDDED_SEED: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
  MODEL_STALL_TIMEOUT_MS: z.coerce.number().int().min(100).max(MAX_TIMER_MS).default(60_000),
  DOWNLOAD_STALL_TIMEOUT_MS: z.coerce.number().int().min(100).max(MAX_TIMER_MS).default(60_000),

  IMAGE_BACKEND: z.enum(['none', 'automatic1111', 'onnx']).optional(),
  AUTOMATIC1111_URL: httpUrl.optional(),
  AUTOMATIC1111_STEPS: z.coerce.number().int().min(1).max(150).default(20),
  AUTOMATIC1111_TIMEOUT_MS: z.coerce.number().int().min(1000).max(MAX_TIMER_MS).default(600_000),
  HARMONIZE_STRENGTH: z.coerce.number().min(0).max(1).default(0.3),
  IMAGE_BATCH_SIZE: z.coerce.number().int().min(1).max(32).default(8),
  IMAGE_WIDTH: z.coerce.number().int().min(64).max(2048).multipleOf(8).default(512),
  IMAGE_HEIGHT: z.coerce.number().int().min(64).max(2048).multipleOf(8).default(512),
  MAX_INPUT_PIXELS: z.coerce
    .number()
    .int()
    .min(1)
    .default(4096 * 4096),
  SD_MODEL_DIR: z.string().min(1).optional(),
  ORT_EXECUTION_PROVIDERS: z
    .string()
    .default(DEFAULT_PROVIDERS)
    .transform((value, context) => {
      try {
        return parseProviderList(value);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  NUM_INFERENCE_STEPS: z.coerce.number().int().min(1).max(150).optional(),
  GUIDANCE_SCALE: z.coerce.number().min(0).max(30).optional(),

  GENERATION_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  MAX_RUNS_PER_SESSION: z.coerce.number().int().min(1).max(50).default(5),
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  JOB_BACKOFF_MS: z.coerce.number().int().min(0).max(MAX_TIMER_MS).default(2000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(MAX_TIMER_MS).default(10_000),
  SESSION_HEARTBEAT_MS: z.coerce.number().int().min(100).max(MAX_TIMER_MS).default(10_000),
  DRAFT_SWEEP_INTERVAL_MS: z.coerce.number().int().min(1000).max(MAX_TIMER_MS).default(3_600_000),

  REDIS_URL: z
    .string()
    .refine((value) => /^rediss?:\/\//.test(value), 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-" only')
    .default('story-agent'),
  JOB_LOCK_DURATION_MS: z.coerce.number().int().min(500).max(MAX_TIMER_MS).default(30_000),
  JOB_STALLED_INTERVAL_MS: z.coerce.number().int().min(200).max(MAX_TIMER_MS).default(15_000),
  GRAPHQL_LANDING_PAGE: booleanish.optional(),
  WEB_DIR: z.string().min(1).optional(),
  EXPORT_PDF_PAGE_SIZE: z.enum(['A5', 'LETTER']).default('A5'),
  EXPORT_CACHE_MB: z.coerce.number().int().min(0).max(65_536).default(64),
  EXPORT_THREADS: z.coerce.number().int().min(1).max(16).default(1),

  // Network safety (README, "Security").
  ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((value, context) => {
      const origins = value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean);
      if (origins.includes('*')) return '*' as const;
      for (const origin of origins) {
        if (!/^https?:\/\/[^/]+$/.test(origin)) context.addIssue({ code: 'custom', message: `${origin} is not an origin (scheme://host[:port], no path)` });
      }
      return origins;
    }),
  GRAPHQL_INTROSPECTION: booleanish.optional(),
  AUTH_MODE: z.enum(['none', 'api-key']).default('none'),
  MEDIA_URL_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  MEDIA_URL_TTL_S: z.coerce.number().int().min(60).default(86_400),
  MAX_ACTIVE_GENERATIONS_PER_OWNER: z.coerce.number().int().min(1).max(1000).default(5),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).max(1000).default(20),
  MAX_SUBSCRIPTIONS_PER_CLIENT: z.coerce.number().int().min(1).max(100_000).default(100),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  METRICS: booleanish.optional(),
  METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
});

/** The embedded text backend's default model: the catalog's default GGUF, in one place for whoever downloads it and whoever loads it. */
const defaultEmbedded = defaultModel(ModelRole.EMBEDDED_TEXT).source;

/** Where the default embedded model lives under DATA_DIR (EMBEDDED_MODEL_FILE's default). */
export function defaultEmbeddedModelFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'models', 'text', defaultEmbedded.kind === 'huggingface-file' ? defaultEmbedded.file : 'model.gguf');
}

/** Where `npm run build` puts the web page, relative to the project, not the working directory. */
const DEFAULT_WEB_DIR = path.join(PROJECT_ROOT, 'dist/web');

type ImageBackendName = 'none' | 'automatic1111' | 'onnx';

/** Express's `trust proxy`: off, on for any peer, a hop count, or the proxies' addresses and subnets. */
export type TrustProxy = boolean | number | string[];

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  logLevel: string;
  publicBaseUrl: string | undefined;
  /** URLs handed to clients (pictures, exports): absolute (from publicBaseUrl, else the request's host) or server-relative paths. */
  publicUrls: 'absolute' | 'relative';
  /** Which peers' X-Forwarded-Proto/-Host (and -For) are believed. */
  trustProxy: TrustProxy;
  dataDir: string;
  mediaDir: string;
  /** The built web page; null to serve none. */
  webDir: string | null;
  /**
   * Book downloads (exportUrl): the PDF's paper size; bytes of rendered files kept in
   * memory (0: none, every download renders); books rendered at once, each on a thread.
   */
  export: { pdfPageSize: 'A5' | 'LETTER'; cacheBytes: number; threads: number };
  database: { kind: 'postgres'; url: string; poolSize: number } | { kind: 'embedded'; dataDir: string };
  ollama: {
    baseUrl: string;
    model: string;
    temperature: number;
    requestTimeoutMs: number;
    storyMaxChars: number;
  };
  /** TEXT_BACKEND and what every text backend shares. */
  text: {
    /** Null when TEXT_BACKEND is unset: each generation gets Ollama if it answers as the generation starts, else embedded. */
    backend: TextBackendName | null;
    /** TEXT_BACKEND unset: how long one look at whether Ollama answers is reused (ms); 0 looks at every generation. */
    ollamaRecheckMs: number;
    /** No byte for this long once a model server's response has started: it stopped answering. */
    stallTimeoutMs: number;
  };
  /** TEXT_BACKEND=openai: any server speaking /v1/chat/completions (llama.cpp, vLLM, LM Studio, KoboldCpp, hosted APIs). */
  openai: {
    baseUrl: string;
    apiKey: string | undefined;
    model: string;
    temperature: number;
    requestTimeoutMs: number;
  } | null;
  /** TEXT_BACKEND=embedded (or chosen for lack of Ollama): a GGUF model in this process. */
  embedded: {
    modelFile: string;
    /** Undefined: the physical cores. */
    threads: number | undefined;
    contextSize: number;
    gpu: 'auto' | 'off' | 'cuda' | 'vulkan' | 'metal';
    temperature: number;
    requestTimeoutMs: number;
    seed: number | undefined;
  };
  images: {
    backend: ImageBackendName;
    automatic1111Url: string | undefined;
    automatic1111Steps: number;
    automatic1111TimeoutMs: number;
    /** Image-to-image strength of the pass that blends the character into each page's scene; 0 turns it off. */
    harmonizeStrength: number;
    /** Most pictures per call on a backend that batches (IMAGE_BACKEND=onnx). */
    batchSize: number;
    width: number;
    height: number;
    maxInputPixels: number;
    /** IMAGE_BACKEND was unset and nothing was found: a picture model downloaded later turns pictures on. */
    chosenByDefault: boolean;
    /** IMAGE_BACKEND=onnx: a Stable Diffusion export in the diffusers/Optimum ONNX layout. */
    sdModelDir: string;
    /** Tried in order; the first that loads is used. */
    ortExecutionProviders: string[];
    /** Unset: the model's own defaults (turbo 1 step, LCM 4, others 25). */
    numInferenceSteps: number | undefined;
    guidanceScale: number | undefined;
  };
  generation: {
    /** Runs at once in an all-in-one process. */
    concurrency: number;
    /** Runs at once in a worker process (`npm run start:worker`); 1 suits one GPU. */
    workerConcurrency: number;
    /** Runs a session may get in all, retries and resumes after restarts together; bounds crash loops. */
    maxRunsPerSession: number;
    retry: { attempts: number; backoffMs: number };
    shutdownTimeoutMs: number;
    /** A running session's row is touched this often; one untouched for 3× this is taken as abandoned. */
    heartbeatMs: number;
    /** Workers sweep drafts of ended page repaints, then picture files no record names, at start-up and then this often (ms). */
    draftSweepIntervalMs: number;
  };
  /** The Hugging Face Hub models are downloaded from (HF_ENDPOINT) and a token for gated ones (HF_TOKEN). */
  huggingFace: { endpoint: string; token: string | undefined };
  /** Set-up downloads (Hub transfers, Ollama pulls): no progress for this long (ms) abandons a transfer, which resumes. */
  downloads: { stallTimeoutMs: number };
  /** Set: BullMQ jobs and Redis pub/sub progress, for several API and worker processes. */
  redis: { url: string; prefix: string; lockDurationMs: number; stalledIntervalMs: number } | null;
  graphqlLandingPage: boolean;
  /** Origins besides the server's own allowed to open the WebSocket; '*' for any. */
  allowedOrigins: '*' | string[];
  /** Introspection and "Did you mean …" suggestions: on outside production unless switched. */
  graphqlIntrospection: boolean;
  auth: {
    /** none: one user, no keys; api-key: every request carries an owner's key. */
    mode: 'none' | 'api-key';
    /** Signs media URLs with AUTH_MODE=api-key; unset: a random one per process (URLs die with it). */
    mediaUrlSecret: string | undefined;
    mediaUrlTtlSeconds: number;
  };
  /** A worker process (npm run start:worker) serves /metrics on this port; unset: it serves none. */
  workerMetricsPort: number | undefined;
  /** GET /metrics: open (default outside production), off (default in production), or behind METRICS_TOKEN. */
  metrics: { kind: 'open' } | { kind: 'off' } | { kind: 'token'; token: string };
  limits: {
    /** Sessions running or queued at once per owner (all of them together with AUTH_MODE=none). */
    maxActiveGenerationsPerOwner: number;
    maxSubscriptionsPerConnection: number;
    /** Open subscriptions per client (API key, or address) over all its connections. */
    maxSubscriptionsPerClient: number;
    /** GraphQL requests over HTTP per client (API key, or address) and minute, per API process. */
    requestsPerMinute: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The variables a model download reads on its own (`npm run models:pull`); the rest of the configuration may be anything. */
const downloadSchema = environmentSchema.pick({ HF_ENDPOINT: true, HF_TOKEN: true, HUGGING_FACE_HUB_TOKEN: true, DOWNLOAD_STALL_TIMEOUT_MS: true });

/** Validates `environment` against `schema`; throws ConfigError naming every variable that is wrong. */
function parseEnvironment<Schema extends z.ZodType>(schema: Schema, environment: NodeJS.ProcessEnv): z.output<Schema> {
  // A variable set to nothing (or only spaces) means "use the default", as in most shells' .env habits.
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  }
  return parsed.data;
}

function downloadSettings(env: z.output<typeof downloadSchema>): Pick<AppConfig, 'huggingFace' | 'downloads'> {
  return {
    huggingFace: { endpoint: env.HF_ENDPOINT, token: env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN },
    downloads: { stallTimeoutMs: env.DOWNLOAD_STALL_TIMEOUT_MS },
  };
}

/**
 * Only what a model download needs (HF_ENDPOINT, HF_TOKEN or HUGGING_FACE_HUB_TOKEN,
 * DOWNLOAD_STALL_TIMEOUT_MS), validated as loadConfig does, for a command told where to put the
 * model that should not fail over the server's other settings. Throws ConfigError.
 */
export function loadDownloadConfig(environment: NodeJS.ProcessEnv = process.env): Pick<AppConfig, 'huggingFace' | 'downloads'> {
  return downloadSettings(parseEnvironment(downloadSchema, environment));
}

export function loadConfig(environment: NodeJS.ProcessEnv = process.env): AppConfig {
  const env = parseEnvironment(environmentSchema, environment);
  if (env.JOB_ATTEMPTS > env.MAX_RUNS_PER_SESSION) {
    throw new ConfigError(
      `Invalid configuration:\n  JOB_ATTEMPTS: ${env.JOB_ATTEMPTS} tries cannot fit in MAX_RUNS_PER_SESSION=${env.MAX_RUNS_PER_SESSION} runs; raise MAX_RUNS_PER_SESSION or lower JOB_ATTEMPTS`,
    );
  }

  const textBackend = env.TEXT_BACKEND ?? 'ollama';
  if (textBackend === 'openai' && (!env.OPENAI_BASE_URL || !env.OPENAI_MODEL)) {
    throw new ConfigError(
      'Invalid configuration:\n  OPENAI_BASE_URL and OPENAI_MODEL: required when TEXT_BACKEND=openai (e.g. OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_MODEL=qwen2.5-7b-instruct)',
    );
  }

  const dataDir = path.resolve(env.DATA_DIR);
  const sdModelDir = path.resolve(env.SD_MODEL_DIR ?? path.join(dataDir, 'models', 'sd'));
  // An A1111 URL on its own is a clear enough wish for images; so is a pulled model; otherwise images stay off.
  const backend: ImageBackendName = env.IMAGE_BACKEND ?? (env.AUTOMATIC1111_URL ? 'automatic1111' : looksLikeModelDir(sdModelDir) ? 'onnx' : 'none');
  if (backend === 'automatic1111' && !env.AUTOMATIC1111_URL) {
    throw new ConfigError('Invalid configuration:\n  AUTOMATIC1111_URL: required when IMAGE_BACKEND=automatic1111 (e.g. http://127.0.0.1:7860)');
  }

  return {
    env: env.NODE_ENV,
    // Without keys the server is for whoever sits at this machine; with keys it may face a network.
    host: env.HOST ?? (env.AUTH_MODE === 'none' ? '127.0.0.1' : '0.0.0.0'),
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    publicBaseUrl: env.PUBLIC_BASE_URL,
    publicUrls: env.PUBLIC_URLS,
    trustProxy: env.TRUST_PROXY,
    dataDir,
    mediaDir: path.resolve(env.MEDIA_DIR ?? path.join(dataDir, 'media')),
    webDir: env.WEB_DIR === 'off' ? null : path.resolve(env.WEB_DIR ?? DEFAULT_WEB_DIR),
    export: { pdfPageSize: env.EXPORT_PDF_PAGE_SIZE, cacheBytes: env.EXPORT_CACHE_MB * 2 ** 20, threads: env.EXPORT_THREADS },
    database: env.DATABASE_URL
      ? { kind: 'postgres', url: env.DATABASE_URL, poolSize: env.DATABASE_POOL_SIZE }
      : { kind: 'embedded', dataDir: path.join(dataDir, 'pglite') },
    ollama: {
      baseUrl: env.OLLAMA_BASE_URL,
      model: env.OLLAMA_MODEL,
      temperature: env.OLLAMA_TEMPERATURE,
      requestTimeoutMs: env.OLLAMA_REQUEST_TIMEOUT_MS,
      storyMaxChars: env.STORY_MAX_CHARS,
    },
    text: { backend: env.TEXT_BACKEND ?? null, ollamaRecheckMs: env.OLLAMA_RECHECK_MS, stallTimeoutMs: env.MODEL_STALL_TIMEOUT_MS },
    embedded: {
      modelFile: env.EMBEDDED_MODEL_FILE ? path.resolve(env.EMBEDDED_MODEL_FILE) : defaultEmbeddedModelFile(dataDir),
      threads: env.EMBEDDED_THREADS,
      contextSize: env.EMBEDDED_CONTEXT_SIZE,
      gpu: env.EMBEDDED_GPU,
      temperature: env.EMBEDDED_TEMPERATURE,
      requestTimeoutMs: env.EMBEDDED_REQUEST_TIMEOUT_MS,
      seed: env.EMBEDDED_SEED,
    },
    openai:
      env.OPENAI_BASE_URL && env.OPENAI_MODEL
        ? {
            baseUrl: env.OPENAI_BASE_URL,
            apiKey: env.OPENAI_API_KEY,
            model: env.OPENAI_MODEL,
            temperature: env.OPENAI_TEMPERATURE,
            requestTimeoutMs: env.OPENAI_REQUEST_TIMEOUT_MS,
          }
        : null,
    images: {
      backend,
      automatic1111Url: env.AUTOMATIC1111_URL,
      automatic1111Steps: env.AUTOMATIC1111_STEPS,
      automatic1111TimeoutMs: env.AUTOMATIC1111_TIMEOUT_MS,
      harmonizeStrength: env.HARMONIZE_STRENGTH,
      batchSize: env.IMAGE_BATCH_SIZE,
      width: env.IMAGE_WIDTH,
      height: env.IMAGE_HEIGHT,
      maxInputPixels: env.MAX_INPUT_PIXELS,
      chosenByDefault: env.IMAGE_BACKEND === undefined && backend === 'none',
      sdModelDir,
      ortExecutionProviders: env.ORT_EXECUTION_PROVIDERS,
      numInferenceSteps: env.NUM_INFERENCE_STEPS,
      guidanceScale: env.GUIDANCE_SCALE,
    },
    generation: {
      concurrency: env.GENERATION_CONCURRENCY,
      workerConcurrency: env.WORKER_CONCURRENCY,
      maxRunsPerSession: env.MAX_RUNS_PER_SESSION,
      retry: { attempts: env.JOB_ATTEMPTS, backoffMs: env.JOB_BACKOFF_MS },
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      heartbeatMs: env.SESSION_HEARTBEAT_MS,
      draftSweepIntervalMs: env.DRAFT_SWEEP_INTERVAL_MS,
    },
    ...downloadSettings(env),
    redis: env.REDIS_URL
      ? { url: env.REDIS_URL, prefix: env.REDIS_PREFIX, lockDurationMs: env.JOB_LOCK_DURATION_MS, stalledIntervalMs: env.JOB_STALLED_INTERVAL_MS }
      : null,
    graphqlLandingPage: env.GRAPHQL_LANDING_PAGE ?? env.NODE_ENV !== 'production',
    allowedOrigins: env.ALLOWED_ORIGINS,
    graphqlIntrospection: env.GRAPHQL_INTROSPECTION ?? env.NODE_ENV !== 'production',
    auth: { mode: env.AUTH_MODE, mediaUrlSecret: env.MEDIA_URL_SECRET, mediaUrlTtlSeconds: env.MEDIA_URL_TTL_S },
    workerMetricsPort: env.WORKER_METRICS_PORT,
    metrics: env.METRICS_TOKEN
      ? { kind: 'token', token: env.METRICS_TOKEN }
      : (env.METRICS ?? env.NODE_ENV !== 'production')
        ? { kind: 'open' }
        : { kind: 'off' },
    limits: {
      maxActiveGenerationsPerOwner: env.MAX_ACTIVE_GENERATIONS_PER_OWNER,
      maxSubscriptionsPerConnection: env.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      maxSubscriptionsPerClient: env.MAX_SUBSCRIPTIONS_PER_CLIENT,
      requestsPerMinute: env.RATE_LIMIT_PER_MINUTE,
    },
  };
}
