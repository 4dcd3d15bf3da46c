import { GenerationStatus, pageOfSession, type GenerationSession } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { SessionRepository } from '../../ports/session-repository.js';
import { SessionNoLongerRunning } from '../errors.js';
import type { ProgressBus, ProgressUpdate } from '../../ports/progress-bus.js';
import type { GenerationWarning, WarningCode } from '../generation/warnings.js';
import { nextPercent, PERCENT, terminalStage, type GenerationStage, type Stage } from './progress-plan.js';

/** Deltas arriving closer together than this go out as one event. */
const COALESCE_WINDOW_MS = 16;

/** The session row's stage column holds this much; longer text (a retry note quoting a server) is cut. */
const STAGE_MAX_CHARS = 200;

function fitStage(stage: string): string {
  return stage.length <= STAGE_MAX_CHARS ? stage : `${stage.slice(0, STAGE_MAX_CHARS - 1)}…`;
}

/**
 * The one place a running generation reports from. Stage changes are saved to
 * the session row and published; percentages and story text are only
 * published, so a story costs a handful of writes, not one per token.
 */
export class GenerationReporter {
  private status: GenerationStatus;
  private percent: number;
  private stage: string | null;
  private stageCode: GenerationStage | null;
  private readonly warnings: GenerationWarning[];
  private storyId: string | null;
  private pendingText = '';
  private pendingPage: number | null = null;
  /** Text of earlier pages still waiting to go out; one event each, so no event mixes pages. */
  private pendingEarlierPages: { text: string; pageIndex: number | null }[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private publishing: Promise<void> = Promise.resolve();
  private readonly sessionId: string;
  /** The page every event of this session is about (a page repaint), or null when events name pages one by one. */
  private readonly sessionPage: number | null;

  constructor(
    session: GenerationSession,
    private readonly repository: SessionRepository,
    private readonly bus: ProgressBus,
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
    /** What subscribers last saw, which may be ahead of the row (percentages are not saved per token). */
    shownPercent = 0,
  ) {
    this.sessionId = session.id;
    this.status = session.status;
    this.percent = Math.max(session.progressPercentage, shownPercent);
    this.sentPercent = this.percent;
    this.stage = session.stage;
    this.stageCode = session.stageCode;
    this.warnings = [...session.warningDetails];
    this.storyId = session.storyId;
    this.sessionPage = pageOfSession(session.options);
  }

  private resetStoryText = false;
  /**
   * The story's id goes out once it has text: a one-page story planned but not
   * yet written is no story to the first contract ("set once the story has been
   * saved"). A book of several pages shows its plan at once.
   */
  private storyHasText = false;
  private textQueued = false;
  private sentPercent: number;
  /** The story text of this run as handed out, to check against what is saved. */
  private streamedText = '';

  /** Whether any story text has gone out to subscribers in this run. */
  hasShownStoryText = false;

  get currentPercent(): number {
    return this.percent;
  }

  /** Enters a stage: saved and published at once. */
  async enter(status: GenerationStatus, stage: Stage, percent: number): Promise<void> {
    await this.flushText();
    this.status = status;
    this.stage = fitStage(stage.label);
    this.stageCode = stage.code;
    this.percent = nextPercent(this.percent, percent);
    await this.save({ status, stage: this.stage, stageCode: this.stageCode, progressPercentage: this.percent });
    this.publish(null);
  }

  /** Moves the bar inside the current stage; published only. `pageIndex`: the page this step was about, if any. */
  progress(percent: number, pageIndex: number | null = null): void {
    const next = nextPercent(this.percent, percent);
    if (next === this.percent && pageIndex === null) return;
    this.percent = next;
    this.publish(null, null, pageIndex);
  }

  /** Story text as it is written, coalesced over ~16 ms; text of different pages never shares an event. */
  storyText(delta: string, percent: number, pageIndex: number | null = null): void {
    if (pageIndex !== this.pendingPage && this.pendingText !== '') {
      this.pendingEarlierPages.push({ text: this.pendingText, pageIndex: this.pendingPage });
      this.pendingText = '';
    }
    this.pendingPage = pageIndex;
    this.percent = nextPercent(this.percent, percent);
    this.pendingText += delta;
    this.streamedText += delta;
    this.flushTimer ??= setTimeout(() => void this.flushText(), COALESCE_WINDOW_MS);
  }

  async flushText(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if ((this.pendingText !== '' || this.pendingEarlierPages.length > 0) && !this.textQueued) {
      this.textQueued = true;
      // The text is taken when its turn to be sent comes, so whatever arrives while a slow
      // bus is still sending earlier events rides along instead of queueing an event per chunk.
      this.send(() => {
        this.textQueued = false;
        const pieces = [...this.pendingEarlierPages, { text: this.pendingText, pageIndex: this.pendingPage }].filter((piece) => piece.text !== '');
        this.pendingEarlierPages = [];
        this.pendingText = '';
        if (pieces.length === 0) return null;
        this.hasShownStoryText = true;
        return pieces.map((piece) => this.update(piece.text, null, piece.pageIndex));
      });
    }
    await this.publishing;
  }

  /**
   * The story row exists (the book is planned): subscribers' text becomes the
   * text saved so far, and they get the story's id once it has text, or at once
   * with `showBeforeText` (a book of several pages, whose plan is worth showing).
   */
  async storySaved(storyId: string, savedText: string, { showBeforeText = false }: { showBeforeText?: boolean } = {}): Promise<void> {
    await this.textIsNow(savedText, null);
    this.storyId = storyId;
    this.storyHasText = showBeforeText || savedText !== '';
    await this.save({ storyId, progressPercentage: this.percent });
    this.publish(null);
  }

  /**
   * A page's text is saved; `savedText` is the story's text with it. Where that
   * differs from what was streamed (cut back to a sentence end, or written by a
   * run that raced this one), subscribers get the saved text.
   */
  async pageSaved(pageIndex: number, savedText: string): Promise<void> {
    await this.textIsNow(savedText, pageIndex);
    this.storyHasText = true;
    this.publish(null, null, pageIndex);
  }

  /** Names the story in events from now on without touching the text (a page repaint works on a finished story). */
  async showStory(storyId: string): Promise<void> {
    this.storyId = storyId;
    this.storyHasText = true;
    this.publish(null);
  }

  /** The story text streamed so far, with the separator a next page's text needs in front of it. */
  get textSoFar(): string {
    return this.streamedText;
  }

  private async textIsNow(savedText: string, pageIndex: number | null): Promise<void> {
    await this.flushText();
    if (savedText === this.streamedText.trim()) return;
    this.resetStoryText = true;
    this.streamedText = savedText;
    this.publish(savedText, null, pageIndex);
  }

  /** Replaces the stage without changing the status, e.g. to say a retry is coming; saved and published. */
  async note(stage: Stage): Promise<void> {
    await this.flushText();
    this.stage = fitStage(stage.label);
    this.stageCode = stage.code;
    await this.save({ stage: this.stage, stageCode: this.stageCode });
    this.publish(null);
  }

  /** A partial failure the user should know of: `code` from warnings.ts's WARNING, `message` in words, `pageIndex` the page it is about (null: none). */
  async warn(code: WarningCode, message: string, pageIndex: number | null = null): Promise<void> {
    this.logger.warn({ warning: message, code, pageIndex }, 'generation warning');
    this.warnings.push({ code, message, pageIndex });
    await this.save(this.warningColumns());
    this.publish(null);
  }

  private warningColumns(): { warnings: string[]; warningDetails: GenerationWarning[] } {
    return { warnings: this.warnings.map((warning) => warning.message), warningDetails: this.warnings.map((warning) => ({ ...warning })) };
  }

  /** True when this run ended the session; false when a cancel got there first. */
  complete(): Promise<boolean> {
    return this.finish(GenerationStatus.COMPLETED, null);
  }

  /** True when this run ended the session; false when a cancel got there first. */
  fail(errorMessage: string): Promise<boolean> {
    return this.finish(GenerationStatus.FAILED, errorMessage);
  }

  /** Stops any pending text from going out; used when the run is abandoned. */
  discard(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.pendingText = '';
    this.pendingEarlierPages = [];
  }

  private async finish(status: GenerationStatus, errorMessage: string | null): Promise<boolean> {
    await this.flushText();
    this.status = status;
    const stage = terminalStage(status);
    this.stage = stage.label;
    this.stageCode = stage.code;
    if (status === GenerationStatus.COMPLETED) this.percent = PERCENT.completed;
    const saved = await this.repository.updateRunningSession(this.sessionId, {
      status,
      stage: this.stage,
      stageCode: this.stageCode,
      progressPercentage: this.percent,
      errorMessage,
      ...this.warningColumns(),
    });
    // A cancel that landed first has already ended the session and told subscribers.
    if (saved) this.publish(null, errorMessage);
    await this.publishing;
    return saved;
  }

  /** Saves to the row; a row that is no longer running (cancelled elsewhere) ends this run. */
  private async save(patch: Parameters<SessionRepository['updateRunningSession']>[1]): Promise<void> {
    if (!(await this.repository.updateRunningSession(this.sessionId, patch))) throw new SessionNoLongerRunning(this.sessionId);
  }

  /** Starts (or starts over) the story: subscribers drop any text they have. */
  async beginStory(stage: Stage, percent: number): Promise<void> {
    this.resetStoryText = true;
    this.streamedText = '';
    await this.enter(GenerationStatus.GENERATING_STORY, stage, percent);
  }

  private publish(storyTextDelta: string | null, errorMessage: string | null = null, pageIndex: number | null = null): void {
    const update = this.update(storyTextDelta, errorMessage, pageIndex);
    this.send(() => update);
  }

  private update(storyTextDelta: string | null, errorMessage: string | null, pageIndex: number | null = null): ProgressUpdate {
    const storyTextReset = this.resetStoryText;
    this.resetStoryText = false;
    return {
      sessionId: this.sessionId,
      status: this.status,
      progressPercentage: this.percent,
      stage: this.stage,
      stageCode: this.stageCode,
      storyTextDelta,
      storyTextReset,
      errorMessage,
      ...this.warningColumns(),
      storyId: this.storyHasText ? this.storyId : null,
      pageIndex: pageIndex ?? this.sessionPage,
    };
  }

  /**
   * Chained so events leave in the order they were made, whatever the bus's latency. Once
   * cancelled or interrupted, whoever aborted the run speaks for the session: checked at
   * send time, so nothing queued before the abort slips out after it.
   */
  private send(next: () => ProgressUpdate | ProgressUpdate[] | null): void {
    this.publishing = this.publishing
      .then(async () => {
        const made = this.signal.aborted ? null : next();
        for (const update of made === null ? [] : Array.isArray(made) ? made : [made]) {
          // Built at different moments, events still never show the bar going back.
          update.progressPercentage = Math.max(update.progressPercentage, this.sentPercent);
          this.sentPercent = update.progressPercentage;
          await this.bus.publish(update);
        }
      })
      .catch((error: unknown) => {
        this.logger.error({ err: error, sessionId: this.sessionId }, 'could not publish progress');
      });
  }
}
