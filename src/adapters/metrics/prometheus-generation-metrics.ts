import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { GenerationStatus } from '../../entities/index.js';
import type { FailureReason, GenerationEnding, GenerationMetrics, StageKind } from '../../ports/generation-metrics.js';

/** Seconds, from a quick plan on a fast GPU to a slow CPU painting a batch. */
const STAGE_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const QUEUE_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const PICTURE_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
/** Tokens per second: a CPU with a large model (~1) to a GPU with a small one (~200). */
const RATE_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300];

/** Which text backend this process hands a generation starting now: every name a backend may have, and the one in use. */
export interface TextBackendInUse {
  names: readonly string[];
  /** Read at each scrape; never probes (TEXT_BACKEND unset: the last look's choice). */
  current(): string;
}

/**
 * GenerationMetrics as prom-client metrics on the registry /metrics serves (names in README,
 * "Operations"). Counters and histograms, which add up across processes in Prometheus; and
 * `story_agent_text_backend{backend}`, a gauge per process: 1 for the backend in use, 0 for the others.
 */
export class PrometheusGenerationMetrics implements GenerationMetrics {
  private readonly started: Counter;
  private readonly completed: Counter;
  private readonly cancelled: Counter;
  private readonly failed: Counter<'reason'>;
  private readonly stageSeconds: Histogram<'stage'>;
  private readonly queueWaitSeconds: Histogram;
  private readonly storyTokens: Counter;
  private readonly storyTokensPerSecond: Histogram;
  private readonly pictureSeconds: Histogram;

  constructor(registry: Registry, textBackend: TextBackendInUse) {
    const registers = [registry];
    new Gauge({
      name: 'story_agent_text_backend',
      help: 'The text backend a generation starting now gets in this process (1), by backend; the others 0',
      labelNames: ['backend'],
      registers,
      collect() {
        const current = textBackend.current();
        for (const backend of textBackend.names) this.set({ backend }, backend === current ? 1 : 0);
      },
    });
    this.started = new Counter({ name: 'story_agent_generations_started_total', help: 'Generations accepted and queued', registers });
    this.completed = new Counter({ name: 'story_agent_generations_completed_total', help: 'Generations completed', registers });
    this.cancelled = new Counter({ name: 'story_agent_generations_cancelled_total', help: 'Generations cancelled by their owner', registers });
    this.failed = new Counter({
      name: 'story_agent_generations_failed_total',
      help: 'Generations failed, by reason (the text model failure kind, image, compositing, runs-exhausted, unexpected)',
      labelNames: ['reason'],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'story_agent_generation_stage_duration_seconds',
      help: 'Duration of one step of a generation, by stage (plan, write_page, describe, paint, composite)',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'story_agent_generation_queue_wait_seconds',
      help: 'Time from a generation being queued (PENDING) to its first run starting',
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.storyTokens = new Counter({ name: 'story_agent_story_tokens_total', help: 'Tokens (streamed chunks) of story text the story model sent', registers });
    this.storyTokensPerSecond = new Histogram({
      name: 'story_agent_story_tokens_per_second',
      help: 'Story model speed per page written: streamed chunks over the seconds from request to last chunk',
      buckets: RATE_BUCKETS,
      registers,
    });
    this.pictureSeconds = new Histogram({
      name: 'story_agent_picture_seconds',
      help: 'Seconds of image backend time per picture painted (a batched call shared among its pictures)',
      buckets: PICTURE_BUCKETS,
      registers,
    });
  }

  generationStarted(): void {
    this.started.inc();
  }

  generationEnded(ending: GenerationEnding): void {
    (ending === GenerationStatus.COMPLETED ? this.completed : this.cancelled).inc();
  }

  generationFailed(reason: FailureReason): void {
    this.failed.inc({ reason });
  }

  stageFinished(stage: StageKind, seconds: number): void {
    this.stageSeconds.observe({ stage }, seconds);
  }

  queueWait(seconds: number): void {
    this.queueWaitSeconds.observe(Math.max(0, seconds));
  }

  textStreamed(tokens: number, seconds: number): void {
    this.storyTokens.inc(tokens);
    if (tokens > 0 && seconds > 0) this.storyTokensPerSecond.observe(tokens / seconds);
  }

  picturesPainted(count: number, seconds: number): void {
    for (let picture = 0; picture < count; picture += 1) this.pictureSeconds.observe(seconds / count);
  }
}
