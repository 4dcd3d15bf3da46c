import { randomInt, randomUUID } from 'node:crypto';
import {
  GenerationKind,
  GenerationStatus,
  ImageType,
  type BookOptions,
  type GeneratedImage,
  type GenerationSession,
  type Story,
  type StoryPage,
} from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import { joinPageTexts, type BookRepository } from '../../ports/book-repository.js';
import type { ImageRepository } from '../../ports/image-repository.js';
import type { SessionRepository } from '../../ports/session-repository.js';
import { compositeOnto, placementOf, prepareCharacter, type CompositingLimits, type PreparedCharacter } from '../images/compositing.js';
import { checkPicture } from '../images/picture-check.js';
import type { GeneratedPicture, ImageGenerationOptions, ImageGenerator, ImageRequest } from '../../ports/image-generator.js';
import type { MediaStore } from '../../ports/media-store.js';
import { GenerationReporter } from '../progress/generation-reporter.js';
import type { ProgressBus } from '../../ports/progress-bus.js';
import { BookProgress, pageWritingFraction, PERCENT, retryingStage, STAGE, writingStage, type BookPart } from '../progress/progress-plan.js';
import { NEGATIVE_PROMPT } from '../text/prompts.js';
import { TextGenerationError, VisualSubject, type BookPlan, type TextGenerator, type TextGenerators } from '../../ports/text-generator.js';
import { describeFailure, failureReasonOf, isExpectedFailure } from './failure-messages.js';
import { StageKind, type GenerationMetrics } from '../../ports/generation-metrics.js';
import { GenerationCancelled, SessionNoLongerRunning } from '../errors.js';
import { PageRepaint } from './page-repaint.js';
import { WARNING } from './warnings.js';
import { RetryLater, type Job } from '../../ports/job-queue.js';
import { type ModelDownloadWaits, SetupComponent } from '../../ports/setup.js';

export interface PipelineDependencies {
  sessions: SessionRepository;
  books: BookRepository;
  images: ImageRepository;
  /** Asked once per run: the run's every model call goes to the generator it hands out. */
  text: TextGenerators;
  /** Null when images are switched off (IMAGE_BACKEND=none), or until a picture model is downloaded; read when a run needs it. */
  painter: ImageGenerator | null;
  /** Downloads of models in progress: a run waits for the one it needs instead of failing. */
  downloads?: ModelDownloadWaits;
  /**
   * Called as each run starts, before `painter` is read: fills `painter` when a picture model
   * appeared since the last call (put on shared disk by another process). Resolves either way;
   * absent when the image backend is fixed.
   */
  lookForPainter?: () => Promise<void>;
  media: MediaStore;
  bus: ProgressBus;
  logger: Logger;
  metrics: GenerationMetrics;
  imageSize: { width: number; height: number };
  compositing: CompositingLimits;
  /** Image-to-image strength of the pass over each composite (where the backend has one); 0 turns it off. */
  harmonizeStrength: number;
  /** Most pictures in one call to a backend that batches (memory grows with the batch). */
  imageBatchSize: number;
  maxRunsPerSession: number;
  heartbeatMs: number;
}

/** A generation as seen by one run of the pipeline. */
export interface Run {
  session: GenerationSession;
  reporter: GenerationReporter;
  /** Aborted on cancel, on interruption, or when the other branch (writing or painting) has failed. */
  signal: AbortSignal;
  progress: BookProgress;
  logger: Logger;
  /** Pictures of this run are drafts of its session: saved beside the page's pictures in use until they replace them. */
  drafts: boolean;
  /** The text backend this run uses from start to end (TEXT_BACKEND unset: the one chosen as it started). */
  text: TextGenerator;
  /** That backend had its model as the run started (TextGeneratorLease.modelPresent): no story-model download is waited for. */
  textModelPresent: boolean;
}

/** One named step of a generation. */
interface Step {
  name: string;
  perform(run: Run): Promise<void>;
}

/**
 * What one kind of session does, chosen by its options' `kind`: its steps in
 * order, how its progress is weighed, and what a run that ends early leaves.
 */
export interface Work {
  progress: BookProgress;
  drafts: boolean;
  /** Only what follows work already in place is left (a page repaint's old files after its swap): it runs even past the run limit. */
  finishing: boolean;
  steps: readonly Step[];
  /** After a failed run (also one out of runs): removes what must not outlive it. */
  afterFailure(run: Run): Promise<void>;
  /** After a cancelled run: removes what must not outlive it. */
  afterCancel(run: Run): Promise<void>;
}

/** A book as saved: the story row and its pages in reading order (texts filled in as they are written). */
export interface Book {
  story: Story;
  pages: StoryPage[];
}

/**
 * One picture the book needs: the character (page null, painted once and used
 * on every page) or a page's scene. The pipeline walks a list of these.
 */
export interface Picture {
  imageType: ImageType.CHARACTER | ImageType.BACKGROUND;
  page: number | null;
  /** For warnings: "the character picture", "page 3's scene". */
  label: string;
  /** Added to a fixed seed, so every picture of a book gets a distinct, reproducible seed. */
  seedOffset: number;
  /** The description; null when it could not be had (a warning was given). */
  description: string | null;
}

/** What a picture has to offer compositing: a saved image and its PNG, or null (a warning was given). */
export type Painted = { image: GeneratedImage; png: Buffer } | null;

const MAX_SEED = 2 ** 31 - 1;
/** Seed offset for a second try at a flat picture: far from the first, so not a near-identical noise start. */
const REPAINT_SEED_STEP = 7919;
/** The character is painted alone on a plain background so it can be matted out. */
const CHARACTER_FRAMING = 'full body, standing, plain white background';

/**
 * Runs a generation session: the steps its kind of work names (a new book,
 * below; one page painted again: page-repaint.ts), with what every kind
 * shares: runs counted and bounded, a heartbeat, retries of transient text
 * failures, and one ending (completed, failed, or stopped quietly).
 *
 * One book, top to bottom:
 *   1. plan it (title, character sheet, per page: outline, scene, placement) and save the plan;
 *   2. at the same time, (a) write the pages in order, streamed and saved page by page, and
 *      (b) paint the character once and every page's scene, then composite each page;
 *   3. complete — with warnings naming whatever picture could not be made.
 * Every step first looks at what is saved, so a resumed run keeps finished
 * pages and pictures, and two runs racing never save one twice.
 */
export class GenerationPipeline {
  constructor(private readonly deps: PipelineDependencies) {}

  async run({ sessionId, attempt, maxAttempts, signal }: Job): Promise<void> {
    const session = await this.deps.sessions.beginAttempt(sessionId);
    if (!session) return;
    await this.deps.lookForPainter?.();
    const picturesComing = await this.picturesComing();
    if (session.attempts === 1) this.deps.metrics.queueWait((Date.now() - session.createdAt.getTime()) / 1000);
    const shown = await this.deps.bus.snapshot(sessionId);
    // Taken last before the try, whose finally gives it back: nothing between can throw.
    const lease = await this.deps.text.forGeneration();
    const logger = this.deps.logger.child({ sessionId, attempt, textBackend: lease.backend });
    const reporter = new GenerationReporter(session, this.deps.sessions, this.deps.bus, signal, logger, shown?.progressPercentage);
    // Other processes tell a live run from an abandoned one by this.
    const heartbeat = setInterval(() => {
      this.deps.sessions.touchSession(sessionId).catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'));
    }, this.deps.heartbeatMs);
    heartbeat.unref();
    const work = this.workFor(session, picturesComing);
    const run: Run = {
      session,
      reporter,
      signal,
      progress: work.progress,
      logger,
      drafts: work.drafts,
      text: lease.text,
      textModelPresent: lease.modelPresent === true,
    };
    try {
      if (session.attempts > this.deps.maxRunsPerSession && !work.finishing) {
        const ended = await reporter.fail(`Interrupted by a server restart and could not be resumed (${session.attempts - 1} runs); start a new generation.`);
        if (ended) this.deps.metrics.generationFailed('runs-exhausted');
        await work.afterFailure(run);
        return;
      }
      for (const step of work.steps) {
        logger.debug({ step: step.name }, 'step');
        await step.perform(run);
      }
      if (await reporter.complete()) this.deps.metrics.generationEnded(GenerationStatus.COMPLETED);
      logger.info({ kind: session.options.kind }, 'generation completed');
    } catch (error) {
      if (signal.aborted || error instanceof SessionNoLongerRunning) {
        reporter.discard();
        logger.info({ reason: signal.aborted ? (signal.reason as Error)?.name : 'session ended elsewhere' }, 'generation stopped');
        // Cancelled (here or through the row): undone. Interrupted (shutdown, crash): kept for the resumed run.
        if (signal.reason instanceof GenerationCancelled || error instanceof SessionNoLongerRunning) await work.afterCancel(run);
        return;
      }
      const message = describeFailure(error);
      // Only a run that showed no story text may start over: subscribers cannot un-see text.
      if (error instanceof TextGenerationError && error.transient && attempt < maxAttempts && !reporter.hasShownStoryText) {
        await reporter.note(retryingStage(attempt + 1, maxAttempts, message));
        throw new RetryLater(message, { cause: error });
      }
      // Failures with a user-facing message are expected operations events; anything else is a bug worth a stack.
      if (isExpectedFailure(error)) logger.warn({ reason: message }, 'generation failed');
      else logger.error({ err: error }, 'generation failed');
      if (await reporter.fail(message)) this.deps.metrics.generationFailed(failureReasonOf(error));
      await work.afterFailure(run);
    } finally {
      clearInterval(heartbeat);
      lease.release();
    }
  }

  /** The work the session's options name; the only place a session's kind is looked at. */
  private workFor(session: GenerationSession, picturesComing: boolean): Work {
    const { options } = session;
    switch (options.kind) {
      case GenerationKind.BOOK:
        return this.bookWork(options, picturesComing);
      case GenerationKind.PAGE_REPAINT:
        return new PageRepaint(options, this.deps, this).work();
    }
  }

  /** A new book: plan it, then write and paint it. A failed book without a written page leaves nothing behind; a cancelled one keeps what it has. */
  private bookWork(options: BookOptions, picturesComing: boolean): Work {
    let book: Book | null = null;
    const planned = (): Book => {
      if (!book) throw new Error('the book is planned before it is written');
      return book;
    };
    return {
      progress: BookProgress.ofBook(options.pageCount ?? 1, picturesComing),
      drafts: false,
      finishing: false,
      steps: [
        { name: 'wait for the story model', perform: (run) => this.waitForStoryModel(run) },
        {
          name: 'plan',
          perform: async (run) => {
            book = await this.plan(run);
          },
        },
        { name: 'write and paint', perform: (run) => this.writeAndPaint(run, planned()) },
      ],
      afterFailure: async (run) => {
        if (book) await this.discardUnwritten(book, run.logger);
      },
      afterCancel: async () => {},
    };
  }

  /** Whether this book gets pictures: a picture model is loaded, or one is being downloaded. */
  private async picturesComing(): Promise<boolean> {
    return this.deps.painter !== null || (await this.deps.downloads?.isDownloading(SetupComponent.PICTURE_MODEL)) === true;
  }

  /** A failed book without a written page is no story: its rows and pictures go, so nothing half-made is kept. */
  private async discardUnwritten(book: Book, logger: Logger): Promise<void> {
    const pages = await this.deps.books.findPages(book.story.id);
    if (pages.some((page) => page.text !== '')) return;
    const { mediaKeys } = await this.deps.books.deleteStory(book.story.id);
    await Promise.all(
      mediaKeys.map((key) => this.deps.media.remove(key).catch((error: unknown) => logger.warn({ err: error, key }, 'could not remove a media file'))),
    );
  }

  /**
   * A story model being downloaded is waited for, with a stage that says so; a download that
   * fails fails the run with its message. Without a download the run goes on (and fails as
   * before if the model is missing); a run whose backend had its model as it started does not
   * wait for a download (TEXT_BACKEND unset: the embedded model while Ollama pulls its own).
   */
  private async waitForStoryModel({ reporter, signal, textModelPresent }: Run): Promise<void> {
    const downloads = this.deps.downloads;
    if (textModelPresent || !downloads || !(await downloads.isDownloading(SetupComponent.STORY_MODEL))) return;
    await reporter.note(STAGE.waitingForStoryModel);
    const outcome = await downloads.whenDownloaded(SetupComponent.STORY_MODEL, signal);
    if (outcome && !outcome.ok) throw new TextGenerationError(outcome.message, 'model-missing');
  }

  // --- 1. plan ----------------------------------------------------------------------------

  private async plan(run: Run): Promise<Book> {
    const { session, reporter, signal } = run;
    const saved = session.storyId ? await this.deps.books.findStory(session.storyId) : null;
    if (saved) {
      // Resumed: subscribers' text becomes what was saved, dropping any page that was cut off mid-stream.
      await reporter.beginStory(STAGE.writingStory, PERCENT.started);
      await reporter.storySaved(saved.id, saved.storyText, { showBeforeText: isBook(session) });
      this.advance(run, { kind: 'plan' }, 1);
      return { story: saved, pages: await this.deps.books.findPages(saved.id) };
    }
    await reporter.beginStory(STAGE.planning, PERCENT.started);
    const plan = await this.timed(StageKind.PLAN, () =>
      run.text.planBook({
        prompt: session.prompt,
        style: session.options.style,
        pageCount: pageCountOf(session),
        signal,
      }),
    );
    signal.throwIfAborted();
    const story = await this.deps.books.saveBookOnce(
      {
        id: randomUUID(),
        title: plan.title,
        prompt: session.prompt,
        style: session.options.style,
        characterDescription: plan.characterSheet,
        pages: plan.pages,
      },
      session.id,
    );
    await reporter.storySaved(story.id, story.storyText, { showBeforeText: isBook(session) });
    this.advance(run, { kind: 'plan' }, 1);
    return { story, pages: await this.deps.books.findPages(story.id) };
  }

  // --- 2. write ∥ paint -------------------------------------------------------------------

  /** Runs both branches; the first to fail stops the other, and its error is the run's. */
  private async writeAndPaint(run: Run, book: Book): Promise<void> {
    const stop = new AbortController();
    const branchRun: Run = { ...run, signal: AbortSignal.any([run.signal, stop.signal]) };
    let failure: { error: unknown } | null = null;
    const branch = (work: Promise<void>) =>
      work.catch((error: unknown) => {
        failure ??= { error };
        stop.abort(error);
      });
    const painting = branch(this.illustrate(branchRun, book));
    await branch(this.writePages(branchRun, book));
    const downloads = this.deps.downloads;
    if (!failure && downloads && (await downloads.isDownloading(SetupComponent.PICTURE_MODEL))) {
      // The painting branch waits for the same download; the stage says what the book waits for.
      await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.waitingForPictureModel, run.reporter.currentPercent);
      const waited = await downloads.whenDownloaded(SetupComponent.PICTURE_MODEL, branchRun.signal).catch(() => null);
      if (waited?.ok) await this.deps.lookForPainter?.();
    }
    if (!failure && this.deps.painter) await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, run.reporter.currentPercent);
    await painting;
    run.signal.throwIfAborted();
    if (failure) throw (failure as { error: unknown }).error;
  }

  private async writePages(run: Run, book: Book): Promise<void> {
    const { reporter, signal } = run;
    const plan = planOf(book);
    for (const page of book.pages) {
      if (page.text !== '') {
        this.advance(run, { kind: 'page', index: page.index }, 1);
        continue;
      }
      await reporter.enter(GenerationStatus.GENERATING_STORY, writingStage(page.index, book.pages.length), reporter.currentPercent);
      let written = 0;
      const draft = await this.timed(StageKind.WRITE_PAGE, () =>
        run.text.writePage({
          plan,
          index: page.index,
          textsBefore: book.pages.slice(0, page.index).map((before) => before.text),
          style: run.session.options.style,
          signal,
          onText: (delta) => {
            // Deltas joined are storyText: a page after written text starts with the blank line between pages.
            const text = written === 0 && reporter.textSoFar.trim() !== '' ? `\n\n${delta.trimStart()}` : delta;
            written += delta.length;
            this.progress(run, { kind: 'page', index: page.index }, pageWritingFraction(written));
            reporter.storyText(text, run.progress.percent(), page.index);
          },
        }),
      );
      if (draft.streamed) this.deps.metrics.textStreamed(draft.streamed.tokens, draft.streamed.seconds);
      await reporter.flushText();
      signal.throwIfAborted();
      const saved = await this.deps.books.savePageTextOnce(book.story.id, page.index, draft.text);
      page.text = saved.text;
      this.advance(run, { kind: 'page', index: page.index }, 1);
      await reporter.pageSaved(page.index, joinPageTexts(book.pages));
      for (const warning of draft.warnings) await reporter.warn(WARNING.textCut.code, warning, page.index);
    }
  }

  private async illustrate(run: Run, book: Book): Promise<void> {
    const waited = await this.deps.downloads?.whenDownloaded(SetupComponent.PICTURE_MODEL, run.signal);
    // A download that ran in another process filled no slot here: look for its model now.
    if (waited?.ok) await this.deps.lookForPainter?.();
    const painter = this.deps.painter;
    if (!painter) {
      if (waited && !waited.ok) await run.reporter.warn(WARNING.pictureModelDownloadFailed.code, `Images were not generated: ${waited.message}`);
      else await run.reporter.warn(WARNING.imagesOff.code, 'Images were not generated: no image backend is configured (set IMAGE_BACKEND).');
      return;
    }
    const existing = await this.deps.images.findImagesByStoryIds([book.story.id]);
    const pictures = await this.describeAll(run, book);
    const painted = this.paintAll(run, painter, book, pictures, existing);
    const [characterPicture, ...scenes] = painted;
    const character = characterPicture.then(async (picture): Promise<(PreparedCharacter & { prompt: string }) | null> => {
      if (!picture) return null;
      try {
        return { ...(await prepareCharacter(picture.png, this.deps.compositing)), prompt: picture.image.promptUsed };
      } catch (error) {
        run.signal.throwIfAborted();
        await run.reporter.warn(
          WARNING.characterCutoutFailed.code,
          `The character picture could not be cut out, so the pages show their scenes without the character: ${describeFailure(error)}`,
        );
        return null;
      }
    });
    // Pages are composited one at a time (sharp is CPU-bound), each as soon as its pictures are there.
    let compositing: Promise<void> = Promise.resolve();
    await Promise.all(
      book.pages.map(async (page, position) => {
        const [prepared, scene] = await Promise.all([character, scenes[position]]);
        compositing = compositing.then(() => this.composite(run, book, page, existing, prepared, scene));
        await compositing;
      }),
    );
  }

  /** The book's pictures, character first, each with its description (saved, or asked for when a story from before books has none). */
  private async describeAll(run: Run, book: Book): Promise<Picture[]> {
    const { story } = book;
    const describe = async (subject: VisualSubject, text: string, save: (description: string) => Promise<void>, label: string, pageIndex: number | null) => {
      try {
        const description = await this.timed(StageKind.DESCRIBE, () =>
          run.text.describe(subject, { text, style: run.session.options.style, signal: run.signal }),
        );
        await save(description);
        return description;
      } catch (error) {
        run.signal.throwIfAborted();
        await run.reporter.warn(
          WARNING.descriptionFailed.code,
          `${capitalise(label)} could not be described, so it was not painted: ${describeFailure(error)}`,
          pageIndex,
        );
        return null;
      }
    };
    const character: Picture = {
      imageType: ImageType.CHARACTER,
      page: null,
      label: 'the character picture',
      seedOffset: 0,
      description:
        story.characterDescription ||
        (await describe(VisualSubject.CHARACTER, story.storyText, (d) => this.deps.books.fillCharacterDescription(story.id, d), 'the character picture', null)),
    };
    const scenes = await Promise.all(
      book.pages.map(async (page): Promise<Picture> => {
        const label = book.pages.length === 1 ? 'the background picture' : `page ${page.index + 1}'s scene`;
        const description =
          page.sceneDescription ||
          (await describe(
            VisualSubject.SCENE,
            page.text || story.storyText,
            (d) => this.deps.books.fillSceneDescription(story.id, page.index, d),
            label,
            page.index,
          ));
        return { imageType: ImageType.BACKGROUND, page: page.index, label, seedOffset: page.index + 1, description };
      }),
    );
    return [character, ...scenes];
  }

  /**
   * Paints what is not saved yet: up to imageBatchSize pictures a call where
   * the backend batches, otherwise one call each; character first. Returns a promise per picture
   * (in list order) that settles as soon as that picture is saved or given up.
   */
  paintAll(run: Run, painter: ImageGenerator, book: Book, pictures: Picture[], existing: GeneratedImage[]): Promise<Painted>[] {
    const saved = (picture: Picture) => existing.find((image) => image.imageType === picture.imageType && image.pageIndex === picture.page);
    const toPaint = pictures.filter((picture) => !saved(picture) && picture.description !== null);
    const perCall = painter.prefersBatches ? Math.max(1, this.deps.imageBatchSize) : 1;
    const batches = Array.from({ length: Math.ceil(toPaint.length / perCall) }, (_, call) => toPaint.slice(call * perCall, (call + 1) * perCall));
    const results = new Map<Picture, Promise<Painted>>();
    let previous: Promise<unknown> = Promise.resolve();
    for (const batch of batches) {
      const done = previous.then(() => this.paintBatch(run, painter, book, batch));
      previous = done.catch(() => undefined);
      for (const [position, picture] of batch.entries())
        results.set(
          picture,
          done.then((painted) => painted[position]),
        );
    }
    return pictures.map((picture) => {
      const image = saved(picture);
      if (image) {
        this.advance(run, { kind: 'picture', page: picture.page }, 1);
        return this.deps.media.read(image.filePath).then((png) => ({ image, png }));
      }
      return results.get(picture) ?? Promise.resolve(null);
    });
  }

  /** Paints one call's worth of pictures and saves each usable one; null (with a warning) for the rest. */
  private async paintBatch(run: Run, painter: ImageGenerator, book: Book, batch: Picture[]): Promise<Painted[]> {
    const requests = batch.map((picture) => this.imageRequest(run.session, picture));
    let pictures: GeneratedPicture[] = [];
    try {
      pictures = await this.paint(painter, requests, {
        signal: run.signal,
        onProgress: (fraction) => {
          for (const picture of batch) this.progress(run, { kind: 'picture', page: picture.page }, fraction * 0.95);
          run.reporter.progress(run.progress.percent());
        },
      });
    } catch (error) {
      run.signal.throwIfAborted();
      for (const picture of batch) await this.warnNotPainted(run, book, picture, describeFailure(error));
      return batch.map(() => null);
    }
    // Cancelled while the backend finished anyway: nothing of it is kept (the story may be deleted next).
    run.signal.throwIfAborted();
    const checked = await this.checkPictures(run, painter, book, batch, requests, pictures);
    const painted: Painted[] = [];
    for (const [position, picture] of checked.entries()) {
      if (!picture) {
        painted.push(null);
        continue;
      }
      const { imageType, page, label } = batch[position];
      // What the model actually read (an encoder may cut a long prompt), and what the user should know about it.
      for (const warning of picture.warnings ?? []) await run.reporter.warn(WARNING.promptCut.code, `${capitalise(label)}: ${warning}`, page);
      const image = await this.saveImage(run, book.story, imageType, page, picture, picture.promptUsed ?? requests[position].prompt, picture.seed);
      this.advance(run, { kind: 'picture', page }, 1, page);
      painted.push({ image, png: picture.png });
    }
    return painted;
  }

  private warnNotPainted(run: Run, book: Book, picture: Picture, why: string): Promise<void> {
    if (picture.page === null) {
      return run.reporter.warn(
        WARNING.characterNotPainted.code,
        `The character picture could not be painted, so the pages show their scenes without the character: ${why}`,
      );
    }
    const keeps = book.pages.length === 1 ? '' : '; the page keeps its text';
    return run.reporter.warn(WARNING.sceneNotPainted.code, `${capitalise(picture.label)} could not be painted${keeps}: ${why}`, picture.page);
  }

  /**
   * Every picture decoded and stored as PNG at the size asked for, whatever
   * the backend sent. A flat one (safety filter, float16 overflow) is painted
   * once more with another seed, then dropped with a warning. Null where a
   * picture was dropped or could not be read.
   */
  private async checkPictures(
    run: Run,
    painter: ImageGenerator,
    book: Book,
    batch: Picture[],
    requests: ImageRequest[],
    pictures: GeneratedPicture[],
  ): Promise<(GeneratedPicture | null)[]> {
    const check = async (picture: GeneratedPicture | undefined, position: number, request: ImageRequest) => {
      if (!picture) return null;
      try {
        const checked = await checkPicture(picture.png, request, painter.description);
        return { ...checked, seed: picture.seed, promptUsed: picture.promptUsed, warnings: picture.warnings };
      } catch (error) {
        await run.reporter.warn(
          WARNING.pictureUnusable.code,
          `${capitalise(batch[position].label)} could not be used: ${describeFailure(error)}`,
          batch[position].page,
        );
        return null;
      }
    };
    const checked = await Promise.all(batch.map((_, position) => check(pictures[position], position, requests[position])));
    const flat = checked.flatMap((picture, position) => (picture?.flat ? [position] : []));
    if (flat.length === 0) return checked;
    const again = flat.map((position) => ({ ...requests[position], seed: (requests[position].seed + REPAINT_SEED_STEP) % MAX_SEED }));
    let repainted: GeneratedPicture[] = [];
    try {
      repainted = await this.paint(painter, again, { signal: run.signal });
    } catch (error) {
      run.signal.throwIfAborted();
      run.logger.warn({ err: error }, 'repainting a flat picture failed');
    }
    for (const [attempt, position] of flat.entries()) {
      const picture = await check(repainted[attempt], position, again[attempt]);
      checked[position] = picture && !picture.flat ? picture : null;
      if (!checked[position]) {
        await this.warnNotPainted(
          run,
          book,
          batch[position],
          'it came out as one flat colour twice (as a safety filter or a float16 overflow in the model gives), so it was dropped',
        );
      }
    }
    return checked;
  }

  // --- 3. composite -----------------------------------------------------------------------

  /** One page's composite: the matted character placed into the page's scene as planned, saved. */
  async composite(
    run: Run,
    book: Book,
    page: StoryPage,
    existing: GeneratedImage[],
    character: (PreparedCharacter & { prompt: string }) | null,
    scene: Painted,
  ): Promise<void> {
    const part: BookPart = { kind: 'composite', index: page.index };
    if (existing.some((image) => image.imageType === ImageType.COMBINED && image.pageIndex === page.index)) {
      this.advance(run, part, 1);
      return;
    }
    if (!character || !scene) return;
    run.signal.throwIfAborted();
    try {
      await this.timed(StageKind.COMPOSITE, async () => {
        const composite = await compositeOnto(character, scene.png, placementOf(page.characterSide, page.characterDistance), this.deps.compositing);
        run.signal.throwIfAborted();
        const prompt = `${character.prompt} | ${scene.image.promptUsed}`;
        const combined = (await this.harmonize(run, composite, book.story.characterDescription, scene.image)) ?? composite;
        await this.saveImage(run, book.story, ImageType.COMBINED, page.index, combined, prompt, null);
      });
      this.advance(run, part, 1, page.index);
    } catch (error) {
      run.signal.throwIfAborted();
      const what = book.pages.length === 1 ? 'The combined illustration' : `Page ${page.index + 1}'s illustration`;
      await run.reporter.warn(WARNING.compositeFailed.code, `${what} could not be made: ${describeFailure(error)}`, page.index);
    }
  }

  /**
   * A light image-to-image pass over a composite so light, colour and edges
   * match the scene while the character stays recognisable (low strength: most
   * of the picture is kept). Null, with a log line, where it is off, not
   * available, or gives nothing usable: the plain composite is used then.
   */
  private async harmonize(
    run: Run,
    composite: { png: Buffer; width: number; height: number },
    characterSheet: string,
    scene: GeneratedImage,
  ): Promise<{ png: Buffer; width: number; height: number } | null> {
    const painter = this.deps.painter;
    if (this.deps.harmonizeStrength <= 0 || !painter?.imageToImage) return null;
    const request = {
      // The character leads, as in its own picture, so CLIP's 77-token cut takes the scene's tail first.
      prompt: `${characterSheet}, ${scene.promptUsed}`,
      negativePrompt: NEGATIVE_PROMPT,
      seed: scene.seed ?? randomInt(0, MAX_SEED),
      width: composite.width,
      height: composite.height,
      initImage: composite.png,
      strength: this.deps.harmonizeStrength,
    };
    try {
      const [picture] = await painter.imageToImage([request], { signal: run.signal });
      const checked = await checkPicture(picture.png, request, painter.description);
      if (!checked.flat) return checked;
      run.logger.warn({ page: scene.pageIndex }, 'the harmonising pass came out flat; the plain composite is kept');
    } catch (error) {
      run.signal.throwIfAborted();
      run.logger.warn({ err: error, page: scene.pageIndex }, 'the harmonising pass failed; the plain composite is kept');
    }
    return null;
  }

  // --- helpers ----------------------------------------------------------------------------

  /** Runs one step of the generation and, when it succeeds, reports its duration. */
  async timed<T>(stage: StageKind, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await work();
    this.deps.metrics.stageFinished(stage, (performance.now() - started) / 1000);
    return result;
  }

  /** One call to the image backend, timed as a paint stage and as seconds per picture painted. */
  private async paint(painter: ImageGenerator, requests: ImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    const started = performance.now();
    const pictures = await this.timed(StageKind.PAINT, () => painter.generate(requests, options));
    this.deps.metrics.picturesPainted(pictures.length, (performance.now() - started) / 1000);
    return pictures;
  }

  private imageRequest(session: GenerationSession, picture: Picture): ImageRequest {
    const base = session.options.seed;
    // A fixed seed gives every picture a distinct, reproducible seed; the largest seed wraps to 0, never to 1.
    const seed = base === null ? randomInt(0, MAX_SEED) : (base + picture.seedOffset) % (MAX_SEED + 1);
    const style = session.options.style ? `, ${session.options.style} style` : '';
    const description = picture.description ?? '';
    // The character sheet leads the prompt so CLIP's 77-token cut never takes it.
    const framing = picture.imageType === ImageType.CHARACTER && !description.includes(CHARACTER_FRAMING) ? `, ${CHARACTER_FRAMING}` : '';
    return { prompt: `${description}${framing}${style}`, negativePrompt: NEGATIVE_PROMPT, seed, ...this.deps.imageSize };
  }

  private async saveImage(
    run: Run,
    story: Story,
    imageType: ImageType,
    pageIndex: number | null,
    picture: { png: Buffer; width: number; height: number },
    promptUsed: string,
    seed: number | null,
  ): Promise<GeneratedImage> {
    const filePath = await this.deps.media.save(picture.png, 'png');
    let saved: GeneratedImage | null;
    try {
      saved = await this.deps.images.saveImageOnce({
        id: randomUUID(),
        storyId: story.id,
        imageType,
        pageIndex,
        filePath,
        width: picture.width,
        height: picture.height,
        promptUsed,
        seed: seed !== null && seed >= 0 && seed <= MAX_SEED ? seed : null,
        pendingSessionId: run.drafts ? run.session.id : null,
      });
    } catch (error) {
      // No record will ever point at the file (the story was deleted meanwhile, say): it goes too.
      await this.deps.media.remove(filePath).catch(() => undefined);
      throw error;
    }
    if (!saved) {
      // A draft of a session that has ended (cancelled, or failed by this very run): whoever ended it discards drafts.
      await this.deps.media.remove(filePath).catch(() => undefined);
      throw new SessionNoLongerRunning(run.session.id);
    }
    // Another run got there first: its file is the one on record.
    if (saved.filePath !== filePath) await this.deps.media.remove(filePath);
    return saved;
  }

  /** Records progress without publishing it (the caller publishes, with the text it goes with). */
  private progress(run: Run, part: BookPart, fraction: number): void {
    run.progress.set(part, fraction);
  }

  /** Records progress and publishes it; `pageIndex` names the page the event is about. */
  advance(run: Run, part: BookPart, fraction: number, pageIndex: number | null = null): void {
    run.progress.set(part, fraction);
    run.reporter.progress(run.progress.percent(), pageIndex);
  }
}

/** Several pages: the plan is shown before any text (a one-page story keeps the first contract's order). */
function isBook(session: GenerationSession): boolean {
  return pageCountOf(session) > 1;
}

function pageCountOf({ options }: GenerationSession): number {
  return options.kind === GenerationKind.BOOK ? (options.pageCount ?? 1) : 1;
}

/** The plan as the story agent needs it, from the saved book. */
function planOf({ story, pages }: Book): BookPlan {
  return {
    title: story.title,
    characterSheet: story.characterDescription,
    pages: pages.map(({ outline, sceneDescription, characterSide, characterDistance }) => ({ outline, sceneDescription, characterSide, characterDistance })),
  };
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
