import { randomUUID } from 'node:crypto';
import { GenerationKind, GenerationStatus, isTerminal, pageOfSession, streamsStoryText, type GenerationSession } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { StoryRepository } from '../../ports/story-repository.js';
import { canSee, ownerIdOf, type Viewer } from '../auth/viewer.js';
import { ConflictError, ImagesDisabledError, InvalidInputError, LimitReachedError } from '../errors.js';
import { DuplicateWorkError } from '../../ports/session-repository.js';
import { refuseWhileBookIsMade } from '../stories/story-service.js';
import type { GenerationMetrics } from '../../ports/generation-metrics.js';
import type { JobQueue } from '../../ports/job-queue.js';
import type { MediaStore } from '../../ports/media-store.js';
import { discardDrafts } from './drafts.js';
import { isAfter, type ProgressBus, type ProgressEvent } from '../../ports/progress-bus.js';
import { STAGE } from '../progress/progress-plan.js';
import { decodeCursor, requirePageSize, toConnection, type Connection } from '../pagination/cursor.js';
import { normalizeSeed, normalizeStartInput, requirePageIndex, requireUuid, type StartInput } from './input.js';

/** What regeneratePageImage asks for; pageIndex is 0-based. */
export interface RepaintInput {
  storyId: string;
  pageIndex: number;
  seed?: number | null;
  redescribe?: boolean | null;
}

/** What a subscriber receives; the first one is the session's state when it joined. */
export type ProgressUpdateForClient = Omit<ProgressEvent, 'seq' | 'epoch'>;

/** Starting, cancelling, following and resuming generations. The pipeline does the work. */
export class GenerationService {
  constructor(
    private readonly repository: StoryRepository,
    /** Where pictures' files are: a cancel removes the files of the session's drafts. */
    private readonly media: MediaStore,
    private readonly queue: JobQueue,
    private readonly bus: ProgressBus,
    private readonly logger: Logger,
    private readonly metrics: GenerationMetrics,
    /** Sessions one owner may have running or queued at once (MAX_ACTIVE_GENERATIONS_PER_OWNER). */
    private readonly maxActivePerOwner: number = Number.POSITIVE_INFINITY,
    /**
     * Asked at each page repaint: false while nothing can paint (IMAGE_BACKEND=none, or left unset with no
     * picture model downloaded yet), so the repaint is refused up front. It may look at the disk, for a
     * picture model copied or downloaded there since the last time it was asked.
     */
    private readonly imagesEnabled: () => Promise<boolean> = async () => true,
  ) {}

  /** Throws LimitReachedError when the viewer already has maxActivePerOwner sessions running or queued. */
  async start(input: StartInput, viewer: Viewer): Promise<GenerationSession> {
    const { prompt, style, seed, pageCount } = normalizeStartInput(input);
    const ownerId = ownerIdOf(viewer);
    await this.refuseOverLimit(ownerId);
    const session = await this.repository.createSession({
      id: randomUUID(),
      prompt,
      options: { kind: GenerationKind.BOOK, style, seed, pageCount },
      stage: STAGE.queued,
      ownerId,
    });
    await this.queue.enqueue(session.id);
    this.metrics.generationStarted();
    this.logger.info({ sessionId: session.id }, 'generation queued');
    return session;
  }

  /**
   * Queues painting one page of a saved book again (the pipeline's PAGE_REPAINT work) and returns
   * its PENDING session. Throws InvalidInputError for a story the viewer cannot see, a page index
   * outside the book or a bad seed; ImagesDisabledError with IMAGE_BACKEND=none; ConflictError while
   * the book is still being made or that page is already being painted again; LimitReachedError
   * as start() does. Nothing is stored when it throws.
   */
  async repaintPage(input: RepaintInput, viewer: Viewer): Promise<GenerationSession> {
    const storyId = requireUuid(input.storyId, 'story id');
    const seed = normalizeSeed(input.seed);
    const [story] = await this.repository.findStoriesByIds([storyId], viewer);
    if (!story) throw new InvalidInputError(`No story has the id ${input.storyId}`);
    const pages = await this.repository.findPages(storyId);
    const pageIndex = requirePageIndex(input.pageIndex, pages.length);
    const redescribe = input.redescribe ?? false;
    if (redescribe && pages[pageIndex].text.trim() === '') {
      throw new InvalidInputError(`Page ${pageIndex} has no text yet, so its scene cannot be described again from it; paint it again without redescribe.`);
    }
    if (!(await this.imagesEnabled())) {
      throw new ImagesDisabledError(
        'Images are switched off on this server (IMAGE_BACKEND=none, or no picture model downloaded yet), so no page can be painted; turn them on (`story-agent setup`, or README, "Images") and try again.',
      );
    }
    const sessions = await this.repository.findSessionsOfStory(storyId);
    refuseWhileBookIsMade(sessions, storyId);
    const busy = sessions.find((session) => !isTerminal(session.status) && pageOfSession(session.options) === pageIndex);
    if (busy) throw new ConflictError(`Page ${pageIndex} of story ${storyId} is already being painted again (session ${busy.id}); wait for it or cancel it.`);
    const ownerId = ownerIdOf(viewer);
    await this.refuseOverLimit(ownerId);
    let session: GenerationSession;
    try {
      session = await this.repository.createSession({
        id: randomUUID(),
        prompt: story.prompt,
        options: { kind: GenerationKind.PAGE_REPAINT, style: story.style, seed, pageIndex, redescribe },
        stage: STAGE.queued,
        ownerId,
        storyId,
      });
    } catch (error) {
      // Another request for the same page got in between the check and the insert.
      if (error instanceof DuplicateWorkError)
        throw new ConflictError(`Page ${pageIndex} of story ${storyId} is already being painted again; wait for it or cancel it.`);
      throw error;
    }
    await this.queue.enqueue(session.id);
    this.metrics.generationStarted();
    this.logger.info({ sessionId: session.id, storyId, pageIndex, redescribe }, 'page repaint queued');
    return session;
  }

  private async refuseOverLimit(ownerId: string | null): Promise<void> {
    const active = await this.repository.countRunningSessionsOf(ownerId);
    if (active >= this.maxActivePerOwner) {
      throw new LimitReachedError(
        `You have ${active} generations running or queued; the limit is ${this.maxActivePerOwner}. Wait for one to finish or cancel one.`,
      );
    }
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

  /**
   * Ends a session the viewer may see as CANCELLED, wherever it is: queued, running here or in
   * another process. Its drafts (a page repaint's new pictures, records and files) are discarded.
   * A page repaint whose new pictures already replace the old ones is past cancelling: it is left
   * to finish. Returns the session as it stands; cancelling a cancelled one again is no error. Throws
   * InvalidInputError for an unknown id or a session that has ended otherwise.
   */
  async cancel(id: string, viewer: Viewer): Promise<GenerationSession> {
    const session = await this.repository.findSessionFor(requireUuid(id, 'session id'), viewer);
    if (!session) throw new InvalidInputError(`No generation session has the id ${id}`);
    if (session.status === GenerationStatus.CANCELLED) return session;
    if (isTerminal(session.status)) {
      throw new InvalidInputError(`Generation session ${id} has already ended (${session.status}); there is nothing to cancel`);
    }
    // Subscribers may have seen more than the row holds (percentages are not saved per token).
    const shown = (await this.bus.snapshot(id))?.progressPercentage ?? 0;
    const cancelled = await this.repository.cancelRunningSession(id, {
      status: GenerationStatus.CANCELLED,
      stage: STAGE.cancelled.label,
      stageCode: STAGE.cancelled.code,
      progressPercentage: Math.max(session.progressPercentage, shown),
    });
    if (cancelled) {
      await this.queue.cancel(id);
      // A run that holds the session discards its drafts too; one queued again after a restart has no run to do it.
      // Ended now, the session gets no new draft, so this leaves none behind wherever its run is.
      await discardDrafts(this.repository, this.media, id, this.logger);
    }
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
        // A page repaint writes no text, so it sends none.
        const saved = session.storyId && streamsStoryText(session.options) ? await this.repository.findStory(session.storyId) : null;
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
      pageIndex: pageOfSession(session.options),
    };
  }
}
