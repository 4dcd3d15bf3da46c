import { randomUUID } from 'node:crypto';
import { GenerationStatus, isTerminal, type GenerationSession } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { StoryRepository } from '../../ports/story-repository.js';
import { canSee, ownerIdOf, type Viewer } from '../auth/viewer.js';
import { InvalidInputError, LimitReachedError } from '../errors.js';
import type { GenerationMetrics } from '../../ports/generation-metrics.js';
import type { JobQueue } from '../../ports/job-queue.js';
import { isAfter, type ProgressBus, type ProgressEvent } from '../../ports/progress-bus.js';
import { STAGE } from '../progress/progress-plan.js';
import { normalizeStartInput, requireUuid, type StartInput } from './input.js';
import { decodeCursor, requirePageSize, toConnection, type Connection } from '../pagination/cursor.js';

/** What a subscriber receives; the first one is the session's state when it joined. */
export type ProgressUpdateForClient = Omit<ProgressEvent, 'seq' | 'epoch'>;

/** Starting, cancelling, following and resuming generations. The pipeline does the work. */
export class GenerationService {
  constructor(
    private readonly repository: StoryRepository,
    private readonly queue: JobQueue,
    private readonly bus: ProgressBus,
    private readonly logger: Logger,
    private readonly metrics: GenerationMetrics,
    /** Sessions one owner may have running or queued at once (MAX_ACTIVE_GENERATIONS_PER_OWNER). */
    private readonly maxActivePerOwner: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Throws LimitReachedError when the viewer already has maxActivePerOwner sessions running or queued. */
  async start(input: StartInput, viewer: Viewer): Promise<GenerationSession> {
    const { prompt, style, seed, pageCount } = normalizeStartInput(input);
    const ownerId = ownerIdOf(viewer);
    const active = await this.repository.countRunningSessionsOf(ownerId);
    if (active >= this.maxActivePerOwner) {
      throw new LimitReachedError(
        `You have ${active} generations running or queued; the limit is ${this.maxActivePerOwner}. Wait for one to finish or cancel one.`,
      );
    }
    const session = await this.repository.createSession({ id: randomUUID(), prompt, options: { style, seed, pageCount }, stage: STAGE.queued, ownerId });
    await this.queue.enqueue(session.id);
    this.metrics.generationStarted();
    this.logger.info({ sessionId: session.id }, 'generation queued');
    return session;
  }

  /** Null for an unknown id and for another owner's session alike. */
  async get(id: string, viewer: Viewer): Promise<GenerationSession | null> {
    return this.repository.findSessionFor(requireUuid(id, 'session id'), viewer);
  }

  /**
   * The viewer's sessions, newest first, `first` (1..100) after the cursor
   * `after`; only those of `statuses` when given (e.g. the running ones, to find
   * a book whose tab was closed). Throws InvalidInputError for a bad `first` or cursor.
   */
  async list(statuses: readonly GenerationStatus[] | null, first: number, after: string | null, viewer: Viewer): Promise<Connection<GenerationSession>> {
    const size = requirePageSize(first);
    const position = after === null ? null : decodeCursor('session', after);
    return toConnection('session', await this.repository.listSessionsAfter(position, size, viewer, statuses));
  }

  async cancel(id: string, viewer: Viewer): Promise<GenerationSession> {
    const session = await this.repository.findSessionFor(requireUuid(id, 'session id'), viewer);
    if (!session) throw new InvalidInputError(`No generation session has the id ${id}`);
    if (session.status === GenerationStatus.CANCELLED) return session;
    if (isTerminal(session.status)) {
      throw new InvalidInputError(`Generation session ${id} has already ended (${session.status}); there is nothing to cancel`);
    }
    // Subscribers may have seen more than the row holds (percentages are not saved per token).
    const shown = (await this.bus.snapshot(id))?.progressPercentage ?? 0;
    const cancelled = await this.repository.updateRunningSession(id, {
      status: GenerationStatus.CANCELLED,
      stage: STAGE.cancelled.label,
      stageCode: STAGE.cancelled.code,
      progressPercentage: Math.max(session.progressPercentage, shown),
    });
    await this.queue.cancel(id);
    const current = await this.repository.requireSession(id);
    if (cancelled) {
      this.metrics.generationEnded(GenerationStatus.CANCELLED);
      await this.bus.publish({ ...this.toUpdate(current), storyTextDelta: null, storyTextReset: false });
      this.logger.info({ sessionId: id }, 'generation cancelled');
    }
    return current;
  }

  /**
   * The progress stream of one session: its current state first, then every
   * event after it, ending after a terminal status. Subscribing before reading
   * the state is what makes the hand-over gap-free.
   */
  async follow(id: string, viewer: Viewer): Promise<AsyncIterable<ProgressUpdateForClient>> {
    const sessionId = requireUuid(id, 'session id');
    const subscription = await this.bus.subscribe(sessionId);
    try {
      const session = await this.repository.findSession(sessionId);
      if (!session || !canSee(viewer, session.ownerId)) throw new InvalidInputError(`No generation session has the id ${id}`);
      const live = await this.bus.snapshot(sessionId);
      const events = this.stream(subscription, session, live);
      // A generator's return() waits for its pending next(), which waits for the next event;
      // closing the subscription first ends that wait, so a client that leaves is let go at once.
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => events.next(),
          return: (value?: unknown) => {
            subscription.close();
            return events.return(value as undefined);
          },
        }),
      };
    } catch (error) {
      subscription.close();
      throw error;
    }
  }

  /** Re-queues sessions a previous process left running; the pipeline resumes each from what was saved. */
  async resumeInterrupted(): Promise<number> {
    const running = await this.repository.findRunningSessions();
    for (const session of running) {
      await this.queue.enqueue(session.id);
    }
    if (running.length > 0) this.logger.info({ count: running.length }, 'resuming generations interrupted by a restart');
    return running.length;
  }

  /** Queues again the running sessions nobody has touched for `silentForMs` (their runner and job are gone). */
  async requeueAbandoned(silentForMs: number, runningHere: ReadonlySet<string>): Promise<number> {
    const abandoned = (await this.repository.findAbandonedSessions(silentForMs)).filter((session) => !runningHere.has(session.id));
    for (const session of abandoned) await this.queue.enqueue(session.id);
    // Sessions still waiting in the queue are silent too; re-queueing them is a no-op, so this is no news.
    if (abandoned.length > 0) this.logger.debug({ count: abandoned.length }, 'queued silent generations again');
    return abandoned.length;
  }

  private async *stream(
    subscription: AsyncIterable<ProgressEvent> & { close(): void },
    session: GenerationSession,
    live: Awaited<ReturnType<ProgressBus['snapshot']>>,
  ): AsyncGenerator<ProgressUpdateForClient> {
    try {
      let covered: { epoch: string; seq: number } | null = null;
      if (live && !isTerminal(session.status)) {
        const { storyTextSoFar, seq, epoch, ...state } = live;
        covered = { epoch, seq };
        // All text so far in one event: it replaces whatever a reconnecting client had.
        yield { ...state, storyTextDelta: storyTextSoFar || null, storyTextReset: true };
      } else {
        // The first event carries all text so far (the schema's promise): from the saved story once there is one.
        const saved = session.storyId ? await this.repository.findStory(session.storyId) : null;
        yield { ...this.toUpdate(session), storyTextDelta: saved?.storyText || null, storyTextReset: true };
        if (isTerminal(session.status)) return;
      }
      for await (const event of subscription) {
        if (!isAfter(event, covered)) continue;
        const { seq: _seq, epoch: _epoch, ...update } = event;
        yield update;
        if (isTerminal(event.status)) return;
      }
    } finally {
      subscription.close();
    }
  }

  private toUpdate(session: GenerationSession): Omit<ProgressUpdateForClient, 'storyTextDelta' | 'storyTextReset'> {
    return {
      sessionId: session.id,
      status: session.status,
      progressPercentage: session.progressPercentage,
      stage: session.stage,
      stageCode: session.stageCode,
      errorMessage: session.errorMessage,
      warnings: session.warnings,
      warningDetails: session.warningDetails,
      storyId: session.storyId,
      pageIndex: null,
    };
  }
}
