import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import type { DataSource, Logger as TypeOrmLogger } from 'typeorm';
import { type AppConfig, TEXT_BACKENDS, type TextBackendName } from './config.js';
import { closeDatabase, createDataSource, openDatabase } from './adapters/database/data-source.js';
import { startHttpServer, type RunningHttpServer } from './http/http-server.js';
import type { PublicUrls } from './http/public-urls.js';
import { createLogger, type Logger } from './logger.js';
import type { RequestContext } from './resolvers/context.js';
import { createStoryLoaders } from './resolvers/loaders.js';
import { buildAppSchema } from './schema/build-schema.js';
import { TypeOrmStoryRepository } from './adapters/database/story-repository.js';
import type { StoryRepository } from './ports/story-repository.js';
import { GenerationPipeline } from './services/generation/generation-pipeline.js';
import { GenerationService } from './services/generation/generation-service.js';
import { DraftSweep } from './services/generation/draft-sweep.js';
import { OrphanFileSweep } from './services/generation/orphan-file-sweep.js';
import { MediaSweep } from './services/generation/media-sweep.js';
import { MEDIA_SWEEP_LOCK_KEY, PostgresAdvisoryLock, SingleProcessLock } from './adapters/database/advisory-lock.js';
import type { ProcessLock } from './ports/process-lock.js';
import { Automatic1111ImageGenerator } from './adapters/images/automatic1111-image-generator.js';
import type { ImageGenerator } from './ports/image-generator.js';
import { OnnxImageGenerator } from './adapters/images/onnx-image-generator.js';
import { PictureModelArrival } from './adapters/images/picture-model-arrival.js';
import { BullMqJobQueue } from './adapters/jobs/bullmq-job-queue.js';
import { InProcessJobQueue } from './adapters/jobs/in-process-job-queue.js';
import type { JobQueue } from './ports/job-queue.js';
import { LocalMediaStore } from './adapters/media/local-media-store.js';
import type { MediaStore } from './ports/media-store.js';
import { InProcessProgressBus } from './adapters/progress/in-process-progress-bus.js';
import type { ProgressBus } from './ports/progress-bus.js';
import { RedisProgressBus } from './adapters/progress/redis-progress-bus.js';
import { createRedis } from './adapters/redis/redis-connection.js';
import { StoryService } from './services/stories/story-service.js';
import type { ChatBackend } from './ports/chat-backend.js';
import { modelServerCall } from './adapters/http/model-server-fetch.js';
import { ChatModelClient } from './services/text/chat-model-client.js';
import { OllamaChatBackend } from './adapters/text/ollama-chat-backend.js';
import { OpenAiChatBackend } from './adapters/text/openai-chat-backend.js';
import { EmbeddedChatBackend } from './adapters/text/embedded-chat-backend.js';
import { probeOllama } from './adapters/text/ollama-probe.js';
import { StoryAgents } from './services/text/story-agents.js';
import type { TextGenerator, TextGenerators } from './ports/text-generator.js';
import { AutoTextBackend } from './adapters/text/auto-text-backend.js';
import { fixedTextGenerators } from './services/text/fixed-text-generators.js';
import { probeAutomatic1111 } from './adapters/images/automatic1111-probe.js';
import { looksLikeModelDir } from '../packages/onnx-diffusion/src/index.js';
import { ApiKeyStore } from './adapters/database/api-key-store.js';
import { ApiKeyService } from './services/auth/api-keys.js';
import { MediaUrlSigner, withSignedUrls } from './services/auth/media-url-signer.js';
import { SINGLE_USER, type Viewer } from './services/auth/viewer.js';
import { type RunningMetricsServer, startWorkerMetricsServer } from './http/worker-metrics-server.js';
import { PrometheusGenerationMetrics } from './adapters/metrics/prometheus-generation-metrics.js';
import type { GenerationMetrics } from './ports/generation-metrics.js';
import { HuggingFaceHub } from './adapters/downloads/hugging-face-hub.js';
import { OllamaModelStore } from './adapters/downloads/ollama-models.js';
import { isFile, LocalSetupProbes } from './adapters/setup/setup-probes.js';
import { SetupComponent } from './ports/setup.js';
import { type SharedDownload, SetupService, type SetupSettings } from './services/setup/setup-service.js';
import type { SharedDownloads } from './ports/shared-downloads.js';
import { InProcessSharedDownloads } from './adapters/setup/in-process-shared-downloads.js';
import { RedisSharedDownloads } from './adapters/setup/redis-shared-downloads.js';
import { BookExportService } from './services/export/book-export-service.js';
import { ExportLinks } from './services/export/export-links.js';
import { RenderedBookCache } from './services/export/rendered-book-cache.js';
import { WorkerThreadBookRenderer } from './adapters/export/worker-thread-book-renderer.js';
import type { BookRenderer } from './ports/book-renderer.js';

/**
 * The composition root: the one place that turns configuration into adapters
 * and services, and starts the roles a process plays.
 *   api:        GraphQL over HTTP/WebSocket; enqueues work, relays progress.
 *   worker:     runs generations from the queue.
 *   all-in-one: both (npm start).
 */
export type Role = 'api' | 'worker' | 'all-in-one';

export interface AppOptions {
  role?: Role;
  logger?: Logger;
  /** Sees every SQL query; tests count queries with it. */
  databaseLogger?: TypeOrmLogger;
}

/** The image backend IMAGE_BACKEND names; null for none. */
function createImageGenerator(config: AppConfig['images'], logger: Logger): ImageGenerator | null {
  switch (config.backend) {
    case 'automatic1111':
      if (!config.automatic1111Url) throw new Error('IMAGE_BACKEND=automatic1111 needs AUTOMATIC1111_URL');
      return new Automatic1111ImageGenerator({ url: config.automatic1111Url, steps: config.automatic1111Steps, timeoutMs: config.automatic1111TimeoutMs });
    case 'onnx':
      return new OnnxImageGenerator(
        { modelDir: config.sdModelDir, providers: config.ortExecutionProviders, steps: config.numInferenceSteps, guidanceScale: config.guidanceScale },
        logger,
      );
    case 'none':
      return null;
  }
}

/** The text backend `backend` names (config has checked that its settings are there). */
export function createChatBackend(config: AppConfig, backend: TextBackendName, logger: Logger): ChatBackend {
  switch (backend) {
    case 'ollama':
      return new OllamaChatBackend(config.ollama);
    case 'embedded':
      return new EmbeddedChatBackend(config.embedded, logger);
    case 'openai':
      if (!config.openai) throw new Error('TEXT_BACKEND=openai needs OPENAI_BASE_URL and OPENAI_MODEL');
      return new OpenAiChatBackend(config.openai);
  }
}

/** How long one look at whether Ollama answers waits, when TEXT_BACKEND is unset. */
const OLLAMA_PROBE_TIMEOUT_MS = 1500;

/** A process's text models: what generations use, and what readiness and the set-up panel check. */
interface TextSide {
  generators: TextGenerators;
  /** The backend in use: TEXT_BACKEND, or (unset) the one the last look chose. */
  backend(): TextBackendName;
  /** Throws a TextGenerationError when the backend a generation starting now would get cannot be used. */
  checkAvailable(signal?: AbortSignal): Promise<void>;
  /** A story model was downloaded here: TEXT_BACKEND unset, the next generation looks again at once instead of reusing the last look. */
  lookAgain(): void;
  /** Lets go of an embedded model. */
  close(): Promise<void>;
}

/**
 * TEXT_BACKEND when set, fixed for the life of the process. Unset: per
 * generation, Ollama when it answers at OLLAMA_BASE_URL with OLLAMA_MODEL, the
 * embedded model when Ollama does not answer or lacks the model while the
 * embedded GGUF is on disk, else Ollama to pull into (AutoTextBackend); the
 * first look happens here, so start-up logs the choice and why in one line.
 */
async function createTextSide(config: AppConfig, logger: Logger): Promise<TextSide> {
  const agentsOver = (backend: ChatBackend) =>
    new StoryAgents(new ChatModelClient(backend, config.text.stallTimeoutMs, modelServerCall), config.ollama.storyMaxChars);
  const configured = config.text.backend;
  if (configured) {
    logger.info({ textBackend: configured }, `text backend: ${configured} (TEXT_BACKEND=${configured})`);
    const chatBackend = createChatBackend(config, configured, logger);
    const text = agentsOver(chatBackend);
    return {
      generators: fixedTextGenerators(configured, text),
      backend: () => configured,
      checkAvailable: (signal) => text.checkAvailable(signal),
      lookAgain: () => {},
      close: async () => chatBackend.close?.(),
    };
  }
  const embedded = new EmbeddedChatBackend(config.embedded, logger);
  const auto = new AutoTextBackend(
    {
      ollama: agentsOver(new OllamaChatBackend(config.ollama)),
      embedded: agentsOver(embedded),
      probeOllama: () => probeOllama(config.ollama.baseUrl, OLLAMA_PROBE_TIMEOUT_MS),
      hasEmbeddedModel: () => isFile(config.embedded.modelFile),
      releaseEmbedded: () => embedded.unload(),
    },
    {
      ollamaBaseUrl: config.ollama.baseUrl,
      ollamaModel: config.ollama.model,
      embeddedModelFile: config.embedded.modelFile,
      recheckMs: config.text.ollamaRecheckMs,
    },
    logger,
  );
  const first = await auto.choose();
  return {
    generators: auto,
    backend: () => auto.current ?? first,
    checkAvailable: async (signal) => (await auto.generatorNow()).checkAvailable(signal),
    lookAgain: () => auto.forget(),
    close: () => embedded.close(),
  };
}

export interface App {
  config: AppConfig;
  role: Role;
  /** The text backend in use: TEXT_BACKEND, or (unset) the one the last look at Ollama chose. */
  readonly textBackend: TextBackendName;
  logger: Logger;
  /** Null in a worker, which serves no GraphQL. */
  http: RunningHttpServer | null;
  /** A worker's /metrics listener (WORKER_METRICS_PORT); null otherwise. */
  workerMetrics: RunningMetricsServer | null;
  generations: GenerationService;
  stories: StoryService;
  bus: ProgressBus;
  queue: JobQueue;
  setup: SetupService;
  /** Stops taking work, lets running generations finish (up to timeoutMs, else hands them back), then closes everything. */
  stop(timeoutMs?: number): Promise<void>;
}

interface Backbone {
  bus: ProgressBus;
  queue: JobQueue;
  /** Set-up downloads as every process sees them. */
  sharedDownloads: SharedDownloads<SharedDownload>;
  close(): Promise<void>;
}

/** Queue, bus and shared set-up downloads: in this process by default, on Redis when REDIS_URL is set. */
function createBackbone(config: AppConfig, logger: Logger): Backbone {
  if (!config.redis) {
    return {
      bus: new InProcessProgressBus(),
      queue: new InProcessJobQueue(config.generation.retry, logger),
      sharedDownloads: new InProcessSharedDownloads(),
      close: async () => {},
    };
  }
  const { url, prefix, lockDurationMs, stalledIntervalMs } = config.redis;
  const commands = createRedis(url, logger, 'commands');
  const busSubscriber = createRedis(url, logger, 'progress-subscriber');
  const downloadsSubscriber = createRedis(url, logger, 'setup-subscriber');
  const queue = new BullMqJobQueue(
    commands,
    () => createRedis(url, logger, 'cancel-listener'),
    { prefix, retry: config.generation.retry, lockDurationMs, stalledIntervalMs, maxStalledCount: config.generation.maxRunsPerSession },
    logger,
  );
  return {
    bus: new RedisProgressBus(commands, busSubscriber, prefix, logger),
    queue,
    sharedDownloads: new RedisSharedDownloads(commands, downloadsSubscriber, prefix, logger),
    async close() {
      await Promise.all([commands, busSubscriber, downloadsSubscriber].map((connection) => connection.quit().catch(() => connection.disconnect())));
    },
  };
}

export async function startApp(config: AppConfig, options: AppOptions = {}): Promise<App> {
  const role = options.role ?? 'all-in-one';
  const logger = (options.logger ?? createLogger(config.logLevel, config.env !== 'production')).child({ role });
  const dataSource = await openDatabase(createDataSource(config.database, { logger: options.databaseLogger }), config.database, {
    onLockLost(error) {
      // Another process may have the embedded database open now. A clean stop would still write to it (generations handed
      // back), so this exits at once, as a crash would; a restart waits for the lock to be free.
      logger.fatal({ err: error }, 'lost the lock on the embedded database: exiting at once, so that two processes never write to it');
      process.exit(1);
    },
  });
  logger.info({ database: config.database.kind === 'postgres' ? 'postgresql' : `embedded PGlite in ${config.database.dataDir}` }, 'database ready');

  const repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: config.database.kind === 'embedded' });
  const { bus, queue, sharedDownloads, close: closeBackbone } = createBackbone(config, logger);
  const media = new LocalMediaStore(config.mediaDir, '/media');
  const textSide = await createTextSide(config, logger);
  // One registry per process: /metrics serves the generation metrics beside the HTTP ones.
  const registry = new Registry();
  const metrics = new PrometheusGenerationMetrics(registry, { names: TEXT_BACKENDS, current: () => textSide.backend() });
  // The image backend lives in the worker; a picture model downloaded or copied while the server runs switches it on there.
  const painter: PainterSlot = { current: null };
  const lookForPainter = role === 'api' ? undefined : painterLookout(painter, config, logger);
  const generations = new GenerationService(repository, media, queue, bus, logger, metrics, config.limits.maxActiveGenerationsPerOwner, () =>
    imagesEnabled(config, role, painter, lookForPainter),
  );
  const mediaSigner =
    config.auth.mode === 'api-key' ? new MediaUrlSigner(config.auth.mediaUrlSecret ?? randomBytes(32).toString('hex'), config.auth.mediaUrlTtlSeconds) : null;
  const stories = new StoryService(repository, mediaSigner ? withSignedUrls(media, mediaSigner) : media, logger);
  const apiKeys = new ApiKeyService(new ApiKeyStore(dataSource));
  const setup = new SetupService(
    setupSettings(config, role),
    {
      probes: new LocalSetupProbes(dataSource, textSide, READINESS_TIMEOUT_MS),
      hub: new HuggingFaceHub({ ...config.huggingFace, stallTimeoutMs: config.downloads.stallTimeoutMs }),
      ollama: new OllamaModelStore(config.ollama.baseUrl, { stallTimeoutMs: config.downloads.stallTimeoutMs, listTimeoutMs: OLLAMA_PROBE_TIMEOUT_MS }),
      shared: sharedDownloads,
    },
    logger,
    {
      installed(component) {
        // A story model pulled into Ollama (or the embedded GGUF) takes the next generation here, not one OLLAMA_RECHECK_MS later.
        if (component === SetupComponent.STORY_MODEL) textSide.lookAgain();
        if (component !== SetupComponent.PICTURE_MODEL || role === 'api') return;
        fillPainter(painter, config, logger, 'picture model downloaded: images enabled');
      },
    },
  );

  // Book files are rendered on threads of their own, so a download does not hold the event loop; only the API serves them.
  const bookRenderer: BookRenderer | null = role === 'worker' ? null : new WorkerThreadBookRenderer({ threads: config.export.threads, logger });
  let http: RunningHttpServer | null = null;
  let worker: RunningWorker | null = null;
  let workerMetrics: RunningMetricsServer | null = null;
  try {
    http = bookRenderer
      ? await startApi(config, {
          generations,
          stories,
          setup,
          dataSource,
          logger,
          apiKeys,
          mediaSigner,
          textSide,
          queue,
          registry,
          repository,
          media,
          bookRenderer,
        })
      : null;
    worker =
      role === 'api'
        ? null
        : await startWorker(config, role, {
            repository,
            bus,
            queue,
            media,
            textSide,
            generations,
            logger,
            metrics,
            painter,
            lookForPainter,
            setup,
            // Workers sharing one PostgreSQL take turns to sweep; an embedded database has one process only.
            sweepLock: config.database.kind === 'postgres' ? new PostgresAdvisoryLock(dataSource, MEDIA_SWEEP_LOCK_KEY) : new SingleProcessLock(),
          });
    if (role === 'worker' && config.workerMetricsPort !== undefined) {
      workerMetrics = await startWorkerMetricsServer({ registry, access: config.metrics, host: config.host, port: config.workerMetricsPort, logger });
    }
  } catch (error) {
    // A half-started process (the port taken, say) lets go of what it opened before failing.
    worker?.stopRecovery();
    await Promise.allSettled([queue.close(0), http?.close(), bus.close(), worker?.close(), setup.close(), bookRenderer?.close()]);
    await Promise.allSettled([closeBackbone(), closeDatabase(dataSource), textSide.close()]);
    throw error;
  }

  let stopping: Promise<void> | null = null;
  return {
    config,
    role,
    get textBackend() {
      return textSide.backend();
    },
    logger,
    http,
    workerMetrics,
    generations,
    stories,
    bus,
    queue,
    setup,
    stop(timeoutMs = config.generation.shutdownTimeoutMs) {
      stopping ??= (async () => {
        worker?.stopRecovery();
        await setup.close();
        await queue.close(timeoutMs);
        await worker?.close();
        await http?.close();
        await bookRenderer?.close();
        await workerMetrics?.close();
        await bus.close();
        await closeBackbone();
        await closeDatabase(dataSource);
        await textSide.close();
      })();
      return stopping;
    },
  };
}

async function startApi(
  config: AppConfig,
  parts: {
    generations: GenerationService;
    stories: StoryService;
    setup: SetupService;
    dataSource: DataSource;
    logger: Logger;
    apiKeys: ApiKeyService;
    mediaSigner: MediaUrlSigner | null;
    textSide: TextSide;
    queue: JobQueue;
    registry: Registry;
    repository: StoryRepository;
    media: MediaStore;
    bookRenderer: BookRenderer;
  },
): Promise<RunningHttpServer> {
  const { generations, stories, setup, dataSource, logger, apiKeys, mediaSigner, textSide, queue, registry, repository, media, bookRenderer } = parts;
  // Export links are built like picture URLs: a server path (signed with AUTH_MODE=api-key) that the request's PublicUrls makes absolute.
  const exportLinks = new ExportLinks(mediaSigner);
  const exports = new BookExportService(
    repository,
    repository,
    media,
    {
      pdfPageSize: config.export.pdfPageSize,
      renderer: bookRenderer,
      cache: config.export.cacheBytes > 0 ? new RenderedBookCache(config.export.cacheBytes) : null,
    },
    logger,
  );
  const schema = await buildAppSchema({ generations, stories, setup, exportLinks });
  const createContext = (viewer: Viewer, urls: PublicUrls): RequestContext => ({
    loaders: createStoryLoaders(stories, generations, viewer),
    generations,
    setup,
    viewer,
    urls,
  });
  const authenticate = async (authorization: string | undefined): Promise<Viewer | null> => {
    if (config.auth.mode === 'none') return SINGLE_USER;
    const key = authorization?.replace(/^Bearer\s+/i, '').trim();
    const ownerId = key ? await apiKeys.ownerOf(key) : null;
    return ownerId ? { ownerId } : null;
  };
  if (config.auth.mode === 'none' && !['127.0.0.1', 'localhost', '::1'].includes(config.host)) {
    logger.warn(
      { host: config.host },
      'AUTH_MODE=none on a network interface: anyone who can reach this port can read, start and delete stories. Set AUTH_MODE=api-key (README, "Security").',
    );
  }
  if (mediaSigner && !config.auth.mediaUrlSecret) {
    logger.info('MEDIA_URL_SECRET is unset: picture links are signed with a key of this process and stop working when it restarts');
  }
  const http = await startHttpServer(
    {
      schema,
      createContext,
      authenticate,
      mediaSigner,
      exports: { service: exports, links: exportLinks },
      maxSubscriptionsPerConnection: config.limits.maxSubscriptionsPerConnection,
      maxSubscriptionsPerClient: config.limits.maxSubscriptionsPerClient,
      requestsPerMinute: config.limits.requestsPerMinute,
      operations: {
        readiness: readinessChecks(config, dataSource, textSide),
        registry,
        countSessions: async () =>
          (await dataSource.query('SELECT status, count(*)::int AS count FROM generation_sessions GROUP BY status')) as { status: string; count: number }[],
        runningHere: () => queue.activeSessions().size,
        metricsAccess: config.metrics,
      },
      mediaDir: config.mediaDir,
      webDir: config.webDir,
      landingPage: config.graphqlLandingPage,
      introspection: config.graphqlIntrospection,
      allowedOrigins: config.allowedOrigins,
      publicBaseUrl: config.publicBaseUrl,
      publicUrls: config.publicUrls,
      trustProxy: config.trustProxy,
      checkHealth: async () => {
        await dataSource.query('SELECT 1');
      },
      logger,
    },
    { host: config.host, port: config.port },
  );
  logger.info({ url: `${http.url}/graphql`, ...(http.pageUrl ? { page: http.pageUrl } : {}) }, 'Story Agent is listening');
  return http;
}

/** What /readyz asks: the database, the text model server with its model (TEXT_BACKEND unset: the backend chosen now), the image backend. */
function readinessChecks(config: AppConfig, dataSource: DataSource, text: Pick<TextGenerator, 'checkAvailable'>): { name: string; check(): Promise<void> }[] {
  const checks = [
    { name: 'database', check: async () => void (await dataSource.query('SELECT 1')) },
    { name: 'textModel', check: () => text.checkAvailable(AbortSignal.timeout(READINESS_TIMEOUT_MS)) },
  ];
  const { backend, automatic1111Url, sdModelDir } = config.images;
  if (backend === 'automatic1111' && automatic1111Url) {
    checks.push({ name: 'images', check: () => probeAutomatic1111(automatic1111Url, READINESS_TIMEOUT_MS) });
  }
  if (backend === 'onnx') {
    checks.push({
      name: 'images',
      check: async () => {
        if (!looksLikeModelDir(sdModelDir)) throw new Error(`no Stable Diffusion ONNX model in ${sdModelDir}`);
      },
    });
  }
  return checks;
}

const READINESS_TIMEOUT_MS = 3000;

/** The image backend a worker paints with; empty until a picture model is there when IMAGE_BACKEND chose none. */
interface PainterSlot {
  current: ImageGenerator | null;
}

/** Switches pictures on with the ONNX backend when IMAGE_BACKEND was left unset and the slot is empty; `how` is the log line. */
function fillPainter(painter: PainterSlot, config: AppConfig, logger: Logger, how: string): void {
  if (painter.current || !config.images.chosenByDefault) return;
  painter.current = createImageGenerator({ ...config.images, backend: 'onnx' }, logger);
  logger.info({ backend: painter.current?.description, modelDir: config.images.sdModelDir }, how);
}

/**
 * IMAGE_BACKEND unset and no picture model yet: each run first looks whether one arrived in
 * SD_MODEL_DIR (a download by another process, or a copy by hand), and so does the all-in-one
 * process when a repaint is asked for, so pictures switch on without a restart. Undefined when
 * the backend is fixed.
 */
function painterLookout(painter: PainterSlot, config: AppConfig, logger: Logger): (() => Promise<void>) | undefined {
  if (!config.images.chosenByDefault) return undefined;
  const arrival = new PictureModelArrival(config.images.sdModelDir);
  return async () => {
    if (!painter.current && (await arrival.isComplete())) fillPainter(painter, config, logger, 'picture model found in SD_MODEL_DIR: images enabled');
  };
}

/**
 * Whether this process's repaints can be painted, asked as one is requested: IMAGE_BACKEND set to a
 * backend, or left unset and a picture model is there. An API process leaves the model to the workers
 * and says yes; the all-in-one one looks in SD_MODEL_DIR first (`lookForPainter`: seven stats, the
 * full check only when a file changed), so a model copied there by hand counts at once.
 */
async function imagesEnabled(config: AppConfig, role: Role, painter: PainterSlot, lookForPainter: (() => Promise<void>) | undefined): Promise<boolean> {
  if (config.images.backend !== 'none') return true;
  if (!config.images.chosenByDefault) return false;
  if (role === 'api') return true;
  await lookForPainter?.();
  return painter.current !== null;
}

/**
 * What the set-up service needs to know of the configuration. TEXT_BACKEND unset (`auto`): the panel
 * looks at Ollama and the embedded GGUF each time it is asked and follows the rule each generation
 * does (chooseAutoBackend): Ollama with its model, the embedded model when Ollama is down or lacks
 * the model while the GGUF is there (offering the Ollama pull beside it), else Ollama to pull into.
 */
function setupSettings(config: AppConfig, role: Role): SetupSettings {
  const textBackend = config.text.backend;
  const text: SetupSettings['text'] =
    textBackend === 'openai'
      ? { backend: 'openai', baseUrl: config.openai?.baseUrl ?? '', model: config.openai?.model ?? '' }
      : {
          backend: textBackend ?? 'auto',
          ollamaBaseUrl: config.ollama.baseUrl,
          ollamaModel: config.ollama.model,
          embeddedModelFile: config.embedded.modelFile,
        };
  const { backend, chosenByDefault, sdModelDir, automatic1111Url } = config.images;
  return {
    text,
    images: { backend, chosenByDefault, sdModelDir, automatic1111Url },
    database: { kind: config.database.kind },
    // The API processes run the downloads the set-up panel starts (README: Scaling out); a worker waits for them.
    takesOverDownloads: role !== 'worker',
  };
}

interface WorkerParts {
  repository: StoryRepository;
  bus: ProgressBus;
  queue: JobQueue;
  media: MediaStore;
  textSide: TextSide;
  generations: GenerationService;
  logger: Logger;
  metrics: GenerationMetrics;
  painter: PainterSlot;
  /** Fills `painter` when a picture model arrived in SD_MODEL_DIR (see painterLookout). */
  lookForPainter: (() => Promise<void>) | undefined;
  setup: SetupService;
  /** Held while this worker sweeps media, so that one worker sweeps at a time. */
  sweepLock: ProcessLock;
}

interface RunningWorker {
  /** Stops looking for silent sessions to queue again, and for drafts and files to sweep. */
  stopRecovery(): void;
  /** Releases the image backend, once no generation runs any more. */
  close(): Promise<void>;
}

async function startWorker(config: AppConfig, role: Role, parts: WorkerParts): Promise<RunningWorker> {
  const { repository, bus, queue, media, textSide, generations, logger, metrics, painter, lookForPainter, setup, sweepLock } = parts;
  const images = createImageGenerator(config.images, logger);
  painter.current = images;
  const pipeline = new GenerationPipeline({
    sessions: repository,
    books: repository,
    images: repository,
    text: textSide.generators,
    get painter() {
      return painter.current;
    },
    downloads: setup,
    lookForPainter,
    media,
    bus,
    logger,
    metrics,
    imageSize: { width: config.images.width, height: config.images.height },
    compositing: { maxInputPixels: config.images.maxInputPixels },
    harmonizeStrength: config.images.harmonizeStrength,
    imageBatchSize: config.images.batchSize,
    maxRunsPerSession: config.generation.maxRunsPerSession,
    heartbeatMs: config.generation.heartbeatMs,
  });
  if (images) {
    logger.info({ backend: images.description, width: config.images.width, height: config.images.height }, 'images enabled');
    if (config.images.harmonizeStrength > 0 && !images.imageToImage) {
      logger.info(
        `${images.description} has no image-to-image, so composites are not harmonised (HARMONIZE_STRENGTH=${config.images.harmonizeStrength} has no effect)`,
      );
    }
  } else {
    logger.info(
      config.images.chosenByDefault
        ? `images are off until a picture model is downloaded: press Download on the page's set-up panel, or run \`npx story-agent setup\` or \`npm run models:pull\` (a Stable Diffusion ONNX model into ${config.images.sdModelDir}; the next generation after it is complete gets pictures, no restart needed); or run AUTOMATIC1111/Forge with --api and set AUTOMATIC1111_URL=http://127.0.0.1:7860`
        : 'images are off (IMAGE_BACKEND=none): stories will be text-only',
    );
  }
  textSide.checkAvailable().then(
    () => {
      const textBackend = textSide.backend();
      logger.info(
        { textBackend, model: { ollama: config.ollama.model, openai: config.openai?.model, embedded: config.embedded.modelFile }[textBackend] },
        'text model ready',
      );
    },
    (error: Error) => logger.warn(error.message),
  );

  // One process owning every session: whatever is still running was interrupted.
  if (!config.redis) await generations.resumeInterrupted();
  const concurrency = role === 'worker' ? config.generation.workerConcurrency : config.generation.concurrency;
  queue.process((job) => pipeline.run(job), concurrency);
  // A session whose run died without ending it (a crash inside the run, a job lost
  // with a Redis restart) stops its heartbeat; it is queued again once silent.
  const silentForMs = config.generation.heartbeatMs * 3;
  const recover = () =>
    generations.requeueAbandoned(silentForMs, queue.activeSessions()).catch((error: unknown) => {
      logger.warn({ err: error }, 'could not check for abandoned sessions');
    });
  const timer = setInterval(recover, config.generation.heartbeatMs);
  timer.unref();
  // Drafts of page repaints whose session ended without discarding them: only sessions already ended, so
  // those just queued again above (and any running elsewhere) keep theirs. Then files no record names, older
  // than ORPHAN_FILE_GRACE_MS. Workers sweep, one at a time; API processes never do.
  const mediaSweep = new MediaSweep(sweepLock, [new DraftSweep(repository, media, logger), new OrphanFileSweep(repository, media, logger)], logger);
  let sweeping: Promise<unknown> | null = null;
  // Stopping ends a sweep between two steps, so a long first sweep does not hold the process past SHUTDOWN_TIMEOUT_MS.
  const stopSweeping = new AbortController();
  const sweep = () => {
    sweeping ??= mediaSweep
      .sweep(stopSweeping.signal)
      .catch((error: unknown) => {
        if (stopSweeping.signal.aborted) logger.info('media sweep stopped: the worker is stopping; the next start sweeps again');
        else logger.warn({ err: error }, 'could not sweep the drafts of ended page repaints and files no record names');
      })
      .finally(() => {
        sweeping = null;
      });
  };
  sweep();
  const sweepTimer = setInterval(sweep, config.generation.draftSweepIntervalMs);
  sweepTimer.unref();
  logger.info({ concurrency }, 'worker is taking generations');
  return {
    stopRecovery: () => {
      clearInterval(timer);
      clearInterval(sweepTimer);
      stopSweeping.abort(new Error('The worker is stopping'));
    },
    close: async () => {
      // A sweep under way ends its current step before the database closes.
      await sweeping;
      await painter.current?.close?.();
    },
  };
}
