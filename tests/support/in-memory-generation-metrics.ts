import type { FailureReason, GenerationEnding, GenerationMetrics, StageKind } from '../../src/ports/generation-metrics.js';

/** GenerationMetrics that keeps every report, in order, for tests to read. */
export class InMemoryGenerationMetrics implements GenerationMetrics {
  started = 0;
  readonly ended: (GenerationEnding | { failed: FailureReason })[] = [];
  readonly stages: { stage: StageKind; seconds: number }[] = [];
  readonly queueWaits: number[] = [];
  readonly streamed: { tokens: number; seconds: number }[] = [];
  readonly painted: { count: number; seconds: number }[] = [];

  generationStarted(): void {
    this.started += 1;
  }

  generationEnded(ending: GenerationEnding): void {
    this.ended.push(ending);
  }

  generationFailed(reason: FailureReason): void {
    this.ended.push({ failed: reason });
  }

  stageFinished(stage: StageKind, seconds: number): void {
    this.stages.push({ stage, seconds });
  }

  queueWait(seconds: number): void {
    this.queueWaits.push(seconds);
  }

  textStreamed(tokens: number, seconds: number): void {
    this.streamed.push({ tokens, seconds });
  }

  picturesPainted(count: number, seconds: number): void {
    this.painted.push({ count, seconds });
  }

  /** How many times each stage was timed. */
  stageCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { stage } of this.stages) counts[stage] = (counts[stage] ?? 0) + 1;
    return counts;
  }
}
