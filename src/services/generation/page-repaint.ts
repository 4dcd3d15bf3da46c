import { GenerationStatus, ImageType, type GeneratedImage, type PageRepaintOptions, type StoryPage } from '../../entities/index.js';
import { StageKind } from '../../ports/generation-metrics.js';
import { VisualSubject } from '../../ports/text-generator.js';
import { PageRepaintFailed, SessionNoLongerRunning } from '../errors.js';
import { prepareCharacter } from '../images/compositing.js';
import { PERCENT, STAGE } from '../progress/progress-plan.js';
import { BookProgress } from '../progress/progress-plan.js';
import { describeFailure } from './failure-messages.js';
import { discardDrafts, removeMediaFiles } from './drafts.js';
import { PictureSwap } from '../../ports/book-repository.js';
import { WARNING } from './warnings.js';
import type { Book, GenerationPipeline, Picture, PipelineDependencies, Run, Work } from './generation-pipeline.js';

/** What the repaint steps use of the book pipeline's picture making. */
type PictureMaking = Pick<GenerationPipeline, 'paintAll' | 'composite' | 'timed' | 'advance'>;

/** What the load step found; the later steps work on it. */
interface Loaded {
  book: Book;
  page: StoryPage;
  /** The book's character picture; null when it has none (its painting failed), and the page shows its scene alone. */
  character: GeneratedImage | null;
  /** Drafts a previous run of this session saved: kept, not painted again. */
  drafts: GeneratedImage[];
}

/**
 * One page of a saved book painted again (a session of kind PAGE_REPAINT):
 *   1. load: the story, the page and the book's character picture (which is never painted again);
 *   2. describe, with `redescribe` only: the page's scene written again from its current text;
 *   3. paint: the scene, with the seed given or a new random one;
 *   4. composite: the character's cut-out placed into the new scene where the page's plan puts it;
 *   5. replace: the new pictures (and description) become the page's in one transaction, which also records
 *      the old pictures' files in the session; then those files go.
 * Until step 5 the new pictures are drafts of the session, so a failure or a
 * cancel leaves the page exactly as it was (the drafts are deleted), and a run
 * resumed after a crash keeps the drafts and the description it had. A run
 * resumed after step 5's transaction only removes the old files and completes.
 * The swap happens only while the session runs: a cancel that reaches the row
 * first leaves the page as it was.
 */
export class PageRepaint {
  private loaded: Loaded | null = null;
  /** The description the scene is painted from: a new one (saved in the session's options first), else the page's. */
  private description: string | null;
  /** With a new description: the page text it was written from. */
  private describedFrom: string | null;

  constructor(
    private readonly options: PageRepaintOptions,
    private readonly deps: PipelineDependencies,
    private readonly pictures: PictureMaking,
  ) {
    this.description = options.sceneDescription ?? null;
    this.describedFrom = options.sceneDescribedFrom ?? null;
  }

  work(): Work {
    const swapped = this.options.replacedMediaKeys;
    return {
      progress: BookProgress.ofPageRepaint(this.options.redescribe),
      drafts: true,
      finishing: swapped !== undefined,
      steps: swapped
        ? [{ name: 'remove the old pictures', perform: (run) => this.finishSwap(run, swapped) }]
        : [
            { name: 'load', perform: (run) => this.load(run) },
            ...(this.options.redescribe ? [{ name: 'describe', perform: (run: Run) => this.describe(run) }] : []),
            { name: 'paint', perform: (run) => this.paint(run) },
            { name: 'replace', perform: (run) => this.replace(run) },
          ],
      afterFailure: (run) => discardDrafts(this.deps.images, this.deps.media, run.session.id, run.logger),
      afterCancel: (run) => discardDrafts(this.deps.images, this.deps.media, run.session.id, run.logger),
    };
  }

  private get label(): string {
    return `page ${this.options.pageIndex + 1}`;
  }

  private async load(run: Run): Promise<void> {
    if (!this.deps.painter) {
      throw new PageRepaintFailed(
        `Images are switched off on this server (IMAGE_BACKEND=none, or no picture model downloaded yet), so ${this.label} was not painted again; turn images on (\`story-agent setup\`, or README, "Images") and try again.`,
      );
    }
    const story = run.session.storyId ? await this.deps.books.findStory(run.session.storyId) : null;
    if (!story) throw new PageRepaintFailed(`The story was deleted, so ${this.label} was not painted again.`);
    const pages = await this.deps.books.findPages(story.id);
    const page = pages.find((candidate) => candidate.index === this.options.pageIndex);
    if (!page) throw new PageRepaintFailed(`The story has no ${this.label} any more, so it was not painted again.`);
    const images = await this.deps.images.findImagesByStoryIds([story.id]);
    const character = images.find((image) => image.imageType === ImageType.CHARACTER) ?? null;
    this.loaded = { book: { story, pages }, page, character, drafts: await this.deps.images.findDraftImages(run.session.id) };
    await run.reporter.showStory(story.id);
    const describing = this.options.redescribe && this.description === null;
    await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, describing ? STAGE.describingScene : STAGE.repaintingPage, PERCENT.started);
  }

  /** The scene written again from the page's text, kept in the session's options so a resumed run paints from the same one. */
  private async describe(run: Run): Promise<void> {
    const { page } = this.required();
    const part = { kind: 'describe', index: page.index } as const;
    if (this.description === null) {
      if (page.text.trim() === '') throw new PageRepaintFailed(`${capitalised(this.label)} has no text yet, so its scene cannot be described from it.`);
      const description = await this.pictures.timed(StageKind.DESCRIBE, () =>
        run.text.describe(VisualSubject.SCENE, { text: page.text, style: this.options.style, signal: run.signal }),
      );
      run.signal.throwIfAborted();
      const saved = await this.deps.sessions.updateRunningSession(run.session.id, {
        options: { ...this.options, sceneDescription: description, sceneDescribedFrom: page.text },
      });
      if (!saved) throw new SessionNoLongerRunning(run.session.id);
      this.description = description;
      this.describedFrom = page.text;
    }
    this.pictures.advance(run, part, 1);
  }

  /** The new scene, then the character placed into it; both saved as drafts. */
  private async paint(run: Run): Promise<void> {
    const { book, page, character, drafts } = this.required();
    const painter = this.deps.painter;
    if (!painter) throw new Error('the load step checks for a painter');
    await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.repaintingPage, run.reporter.currentPercent);
    const description = this.description ?? page.sceneDescription;
    if (description.trim() === '') {
      throw new PageRepaintFailed(`${capitalised(this.label)} has no scene description; paint it again with "describe again" (redescribe) to write one.`);
    }
    // The cut-out first: it takes milliseconds, and a character that cannot be read fails the repaint before seconds of painting go to waste.
    const prepared = await this.prepareCharacter(run, character);
    const picture: Picture = { imageType: ImageType.BACKGROUND, page: page.index, label: `${this.label}'s scene`, seedOffset: 0, description };
    const [painting] = this.pictures.paintAll(run, painter, book, [picture], drafts);
    const scene = await painting;
    if (!scene) throw new PageRepaintFailed(`${capitalised(this.label)} could not be painted again; it keeps its old picture (see the warnings for why).`);
    if (!prepared) return;
    await this.pictures.composite(run, book, page, drafts, prepared, scene);
    const combined = await this.deps.images.findDraftImages(run.session.id);
    if (!combined.some((image) => image.imageType === ImageType.COMBINED)) {
      throw new PageRepaintFailed(
        `The character could not be placed into ${this.label}'s new scene; the page keeps its old picture (see the warnings for why).`,
      );
    }
  }

  /** The book's character, cut out of its saved picture as the book's pages had it; null (with a warning) when the book has none. */
  private async prepareCharacter(run: Run, character: GeneratedImage | null) {
    if (!character) {
      await run.reporter.warn(
        WARNING.characterNotPainted.code,
        `The book has no character picture, so ${this.label} shows its new scene without the character.`,
        this.options.pageIndex,
      );
      return null;
    }
    try {
      const png = await this.deps.media.read(character.filePath);
      return { ...(await prepareCharacter(png, this.deps.compositing)), prompt: character.promptUsed };
    } catch (error) {
      run.signal.throwIfAborted();
      throw new PageRepaintFailed(
        `The book's character picture could not be read or cut out, so ${this.label} was not painted again: ${describeFailure(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  /** The drafts become the page's pictures in one step; the old pictures' files go only after that. */
  private async replace(run: Run): Promise<void> {
    const { book, page } = this.required();
    run.signal.throwIfAborted();
    await this.warnIfTextChanged(run, book.story.id, page.index);
    const swap = await this.deps.books.replacePagePictures(book.story.id, page.index, run.session.id, this.description);
    if (swap.outcome !== PictureSwap.REPLACED) {
      // Ended: a cancel reached the row first, and the page keeps its pictures.
      if (swap.outcome === PictureSwap.SESSION_ENDED) throw new SessionNoLongerRunning(run.session.id);
      throw new PageRepaintFailed(`The story was deleted, so ${this.label} was not painted again.`);
    }
    await removeMediaFiles(this.deps.media, swap.mediaKeys, run.logger);
    run.logger.info({ storyId: book.story.id, page: page.index, removed: swap.mediaKeys.length }, 'page painted again');
  }

  /**
   * A run resumed after the swap's transaction (the worker died before the session was marked
   * completed): the page already shows the new pictures; only the old files may be left to remove.
   */
  private async finishSwap(run: Run, mediaKeys: readonly string[]): Promise<void> {
    if (run.session.storyId) await run.reporter.showStory(run.session.storyId);
    await removeMediaFiles(this.deps.media, mediaKeys, run.logger);
    run.logger.info({ storyId: run.session.storyId, page: this.options.pageIndex, removed: mediaKeys.length }, 'page painted again (resumed after the swap)');
  }

  /**
   * With a new description: a warning when the page's text is no longer the text it was described from
   * (the owner edited it meanwhile). The new picture still replaces the old one; the warning says to
   * paint it again with redescribe to match the new text. Given once per session, also across a resume.
   */
  private async warnIfTextChanged(run: Run, storyId: string, index: number): Promise<void> {
    const describedFrom = this.describedFrom;
    const code = WARNING.describedFromEarlierText.code;
    if (describedFrom === null || run.session.warningDetails.some((warning) => warning.code === code)) return;
    const current = (await this.deps.books.findPages(storyId)).find((candidate) => candidate.index === index);
    if (!current || current.text === describedFrom) return;
    await run.reporter.warn(
      code,
      `${capitalised(this.label)}'s text was changed while its scene was being described again, so the new picture shows the earlier text's scene; paint it again with "describe again" (redescribe) to match the new text.`,
      index,
    );
  }

  private required(): Loaded {
    if (!this.loaded) throw new Error('the load step runs first');
    return this.loaded;
  }
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
