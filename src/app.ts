import type { Logger as TypeOrmLogger } from 'typeorm';
import type { AppConfig } from './config.js';
import { createDataSource, openDatabase } from './db/data-source.js';
import { startHttpServer, type RunningHttpServer } from './http/http-server.js';
import { createLogger, type Logger } from './logger.js';
import type { RequestContext } from './resolvers/context.js';
import { buildAppSchema } from './schema/build-schema.js';
import { StoryRepository } from './services/database/story-repository.js';
import { GenerationPipeline } from './services/generation/generation-pipeline.js';
import { GenerationService } from './services/generation/generation-service.js';
import { Automatic1111ImageGenerator } from './services/images/automatic1111-image-generator.js';
import type { ImageGenerator } from './services/images/image-generator.js';
import { InProcessJobQueue } from './services/jobs/in-process-job-queue.js';
import type { JobQueue } from './services/jobs/job-queue.js';
import { LocalMediaStore } from './services/media/local-media-store.js';
import { InProcessProgressBus } from './services/progress/in-process-progress-bus.js';
import type { ProgressBus } from './services/progress/progress-bus.js';
import { StoryService } from './services/stories/story-service.js';
import { OllamaTextGenerator } from './services/text/ollama-text-generator.js';
import type { TextGenerator } from './services/text/text-generator.js';

export interface AppOptions {
  logger?: Logger;
  /** Sees every SQL query; tests count queries with it. */
  databaseLogger?: TypeOrmLogger;
}

/** The composition root: the one place that turns configuration into adapters and services. */
export function createImageGenerator(config: AppConfig['images']): ImageGenerator | null {
  switch (config.backend) {
    case 'automatic1111':
      return new Automatic1111ImageGenerator({ url: config.automatic1111Url!, steps: config.automatic1111Steps, timeoutMs: config.automatic1111TimeoutMs });
    case 'none':
      return null;
  }
}

export interface App {
  config: AppConfig;
  logger: Logger;
  http: RunningHttpServer;
  generations: GenerationService;
  stories: StoryService;
  bus: ProgressBus;
  queue: JobQueue;
  text: TextGenerator;
  /** Stops taking work, lets running generations finish (up to timeoutMs), then closes everything. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startApp(config: AppConfig, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const dataSource = await openDatabase(createDataSource(config.database, { logger: options.databaseLogger }));
  logger.info({ database: config.database.kind === 'postgres' ? 'postgresql' : `embedded PGlite in ${config.database.dataDir}` }, 'database ready');

  const repository = new StoryRepository(dataSource, { serializeWrites: config.database.kind === 'embedded' });
  const bus = new InProcessProgressBus();
  const queue = new InProcessJobQueue(config.generation.concurrency, logger);
  const media = new LocalMediaStore(config.mediaDir, `${config.publicBaseUrl ?? ''}/media`);
  const text = new OllamaTextGenerator(config.ollama);
  const images = createImageGenerator(config.images);
  const pipeline = new GenerationPipeline({
    repository,
    text,
    images,
    media,
    bus,
    logger,
    imageSize: { width: config.images.width, height: config.images.height },
    compositing: { maxInputPixels: config.images.maxInputPixels },
    maxAttempts: config.generation.maxResumeAttempts,
  });
  const generations = new GenerationService(repository, queue, bus, logger);
  const stories = new StoryService(repository, media, logger);

  const schema = await buildAppSchema({ generations, stories });
  const createContext = (): RequestContext => ({ loaders: stories.createLoaders(), generations });
  const http = await startHttpServer(
    {
      schema,
      createContext,
      mediaDir: config.mediaDir,
      webDir: config.webDir,
      landingPage: config.graphqlLandingPage,
      checkHealth: async () => {
        await dataSource.query('SELECT 1');
      },
      logger,
    },
    { host: config.host, port: config.port },
  );

  if (images) {
    logger.info({ backend: images.description, width: config.images.width, height: config.images.height }, 'images enabled');
  } else {
    logger.info(
      'images are off (IMAGE_BACKEND=none): stories will be text-only. To paint them, run AUTOMATIC1111/Forge with --api and set IMAGE_BACKEND=automatic1111 AUTOMATIC1111_URL=http://127.0.0.1:7860',
    );
  }
  text.checkAvailable().then(
    () => logger.info({ ollama: config.ollama.baseUrl, model: config.ollama.model }, 'Ollama ready'),
    (error: Error) => logger.warn(error.message),
  );

  await generations.resumeInterrupted();
  queue.process((sessionId, signal) => pipeline.run(sessionId, signal));
  logger.info({ url: `${http.url}/graphql` }, 'Story Agent is listening');

  let stopping: Promise<void> | null = null;
  return {
    config,
    logger,
    http,
    generations,
    stories,
    bus,
    queue,
    text,
    stop(timeoutMs = 10_000) {
      stopping ??= (async () => {
        await queue.close(timeoutMs);
        await http.close();
        await bus.close();
        await dataSource.destroy();
      })();
      return stopping;
    },
  };
}
