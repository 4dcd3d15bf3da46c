import { randomInt, randomUUID } from 'node:crypto';
import { GenerationStatus, ImageType, type GeneratedImage, type GenerationSession, type Story } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { StoryRepository } from '../../ports/story-repository.js';
import { compositeCharacter, type CompositingLimits } from '../images/compositing.js';
import { checkPicture } from '../images/picture-check.js';
import type { GeneratedPicture, ImageGenerator, ImageRequest } from '../../ports/image-generator.js';
import type { MediaStore } from '../../ports/media-store.js';
import { GenerationReporter } from '../progress/generation-reporter.js';
import type { ProgressBus } from '../../ports/progress-bus.js';
import { ImageStageMeter, PERCENT, retryingStage, STAGE, storyWritingPercent, type ImageStagePart } from '../progress/progress-plan.js';
import { NEGATIVE_PROMPT } from '../text/prompts.js';
import type { TextGenerator } from '../../ports/text-generator.js';
import { describeFailure, isExpectedFailure } from './failure-messages.js';
import { SessionNoLongerRunning } from '../errors.js';
import { RetryLater, type Job } from '../../ports/job-queue.js';
import { TextGenerationError } from '../../ports/text-generator.js';

export interface PipelineDependencies {
  repository: StoryRepository;
  text: TextGenerator;
  /** Null when images are switched off (IMAGE_BACKEND=none). */
  images: ImageGenerator | null;
  media: MediaStore;
  bus: ProgressBus;
  logger: Logger;
  imageSize: { width: number; height: number };
  compositing: CompositingLimits;
  maxRunsPerSession: number;
  heartbeatMs: number;
}

type Role = 'character' | 'background';

const ROLES: Record<Role, { imageType: ImageType; descriptionField: 'characterDescription' | 'backgroundDescription'; label: string }> = {
  character: { imageType: ImageType.CHARACTER, descriptionField: 'characterDescription', label: 'character' },
  background: { imageType: ImageType.BACKGROUND, descriptionField: 'backgroundDescription', label: 'background' },
};

/** A generation as seen by one run of the pipeline. */
interface Run {
  session: GenerationSession;
  reporter: GenerationReporter;
  signal: AbortSignal;
  meter: ImageStageMeter;
  logger: Logger;
}

/** What one branch (character or background) has to offer the compositing step. */
type Painted = { image: GeneratedImage; png: Buffer } | null;

const MAX_SEED = 2 ** 31 - 1;
/** Seed offset for a second try at a flat picture: far from the first, so not a near-identical noise start. */
const REPAINT_SEED_STEP = 7919;

/**
 * One generation, top to bottom:
 *   1. write the story (streamed), save it;
 *   2. describe the character and the background (concurrently), paint each;
 *   3. composite the character over the background;
 *   4. complete — with warnings for whatever part of 2–3 could not be done.
 * Every step first looks at what is already saved, so a resumed run picks up
 * where the last one stopped and never writes a story twice.
 */
export class GenerationPipeline {
  constructor(private readonly deps: PipelineDependencies) {}

  async run({ sessionId, attempt, maxAttempts, signal }: Job): Promise<void> {
    const session = await this.deps.repository.beginAttempt(sessionId);
    if (!session) return;
    const logger = this.deps.logger.child({ sessionId, attempt });
    const shown = await this.deps.bus.snapshot(sessionId);
    const reporter = new GenerationReporter(session, this.deps.repository, this.deps.bus, signal, logger, shown?.progressPercentage);
    const run: Run = { session, reporter, signal, meter: new ImageStageMeter(), logger };
    // Other processes tell a live run from an abandoned one by this.
    const heartbeat = setInterval(() => {
      this.deps.repository.touchSession(sessionId).catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'));
    }, this.deps.heartbeatMs);
    heartbeat.unref();
    try {
      if (session.attempts > this.deps.maxRunsPerSession) {
        await reporter.fail(`Interrupted by a server restart and could not be resumed (${session.attempts - 1} runs); start a new generation.`);
        return;
      }
      const story = await this.writeStory(run);
      await this.illustrate(run, story);
      await reporter.complete();
      logger.info({ storyId: story.id }, 'generation completed');
    } catch (error) {
      if (signal.aborted || error instanceof SessionNoLongerRunning) {
        reporter.discard();
        logger.info({ reason: signal.aborted ? (signal.reason as Error)?.name : 'session ended elsewhere' }, 'generation stopped');
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
      await reporter.fail(message);
    } finally {
      clearInterval(heartbeat);
    }
  }

  // --- 1. story ---------------------------------------------------------------------------

  private async writeStory({ session, reporter, signal }: Run): Promise<Story> {
    if (session.storyId) {
      const saved = await this.deps.repository.findStory(session.storyId);
      if (saved) return saved;
    }
    await reporter.beginStory(STAGE.writingStory, PERCENT.storyStart);
    let written = 0;
    const draft = await this.deps.text.writeStory({
      prompt: session.prompt,
      style: session.options.style,
      signal,
      onText: (delta) => {
        written += delta.length;
        reporter.storyText(delta, storyWritingPercent(written));
      },
    });
    await reporter.flushText();
    signal.throwIfAborted();
    const story = await this.deps.repository.saveStoryOnce(
      { id: randomUUID(), title: draft.title, prompt: session.prompt, storyText: draft.storyText },
      session.id,
    );
    await reporter.storySaved(story.id, story.storyText);
    for (const warning of draft.warnings) await reporter.warn(warning);
    return story;
  }

  // --- 2 + 3. descriptions, images, composite ---------------------------------------------

  private async illustrate(run: Run, story: Story): Promise<void> {
    await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.describing, PERCENT.imagesStart);
    const existing = await this.deps.repository.findImagesByStoryIds([story.id]);
    const images = this.deps.images;
    if (!images) {
      await Promise.all([this.describe(run, story, 'character'), this.describe(run, story, 'background')]);
      await run.reporter.warn('Images were not generated: no image backend is configured (set IMAGE_BACKEND).');
      return;
    }

    let character: Painted;
    let background: Painted;
    if (images.prefersBatches) {
      const [characterPrompt, backgroundPrompt] = await Promise.all([this.describe(run, story, 'character'), this.describe(run, story, 'background')]);
      [character, background] = await this.paintBatch(run, images, story, existing, { character: characterPrompt, background: backgroundPrompt });
    } else {
      // Each branch paints as soon as its own description is ready.
      [character, background] = await Promise.all(
        (['character', 'background'] as const).map(async (role) => {
          const prompt = await this.describe(run, story, role);
          const [painted] = await this.paintBatch(run, images, story, existing, { [role]: prompt });
          return painted;
        }),
      );
    }
    await this.composite(run, story, existing, character, background);
  }

  /** The visual prompt for one role: saved already, or asked of the agent and saved. Null (with a warning) on failure. */
  private async describe(run: Run, story: Story, role: Role): Promise<string | null> {
    const { descriptionField, label } = ROLES[role];
    const part: ImageStagePart = role === 'character' ? 'characterDescription' : 'backgroundDescription';
    if (story[descriptionField]) {
      this.advance(run, part, 1);
      return story[descriptionField];
    }
    try {
      const request = { storyText: story.storyText, style: run.session.options.style, signal: run.signal };
      const description = role === 'character' ? await this.deps.text.describeCharacter(request) : await this.deps.text.describeBackground(request);
      await this.deps.repository.updateStoryDescriptions(story.id, { [descriptionField]: description });
      story[descriptionField] = description;
      this.advance(run, part, 1);
      return description;
    } catch (error) {
      run.signal.throwIfAborted();
      await run.reporter.warn(`The ${label} could not be described, so its image was skipped: ${describeFailure(error)}`);
      return null;
    }
  }

  /**
   * Paints the roles given (those with a prompt and no saved image) in one call.
   * Returns, in role order, what each role has: a saved image, or null.
   */
  private async paintBatch(
    run: Run,
    images: ImageGenerator,
    story: Story,
    existing: GeneratedImage[],
    prompts: Partial<Record<Role, string | null>>,
  ): Promise<Painted[]> {
    const roles = Object.keys(prompts) as Role[];
    const found = new Map<Role, Painted>();
    const toPaint: { role: Role; request: ImageRequest }[] = [];
    for (const role of roles) {
      const saved = existing.find((image) => image.imageType === ROLES[role].imageType);
      const prompt = prompts[role];
      if (saved) {
        found.set(role, { image: saved, png: await this.deps.media.read(saved.filePath) });
        this.advance(run, role === 'character' ? 'characterImage' : 'backgroundImage', 1);
      } else if (prompt) {
        toPaint.push({ role, request: this.imageRequest(run.session, role, prompt) });
      } else {
        found.set(role, null);
      }
    }
    if (toPaint.length > 0) {
      await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, run.reporter.currentPercent);
      let pictures: GeneratedPicture[] = [];
      try {
        pictures = await images.generate(
          toPaint.map((item) => item.request),
          {
            signal: run.signal,
            onProgress: (fraction) => {
              for (const { role } of toPaint) this.advance(run, role === 'character' ? 'characterImage' : 'backgroundImage', fraction);
            },
          },
        );
      } catch (error) {
        run.signal.throwIfAborted();
        const labels = toPaint.map(({ role }) => ROLES[role].label).join(' and ');
        await run.reporter.warn(`The ${labels} image could not be generated: ${describeFailure(error)}`);
        for (const { role } of toPaint) found.set(role, null);
      }
      const checked = await this.checkPictures(run, images, toPaint, pictures);
      for (const [index, picture] of checked.entries()) {
        const { role, request } = toPaint[index];
        if (!picture) {
          found.set(role, null);
          continue;
        }
        const image = await this.saveImage(story, ROLES[role].imageType, picture, request.prompt, picture.seed);
        found.set(role, { image, png: picture.png });
        this.advance(run, role === 'character' ? 'characterImage' : 'backgroundImage', 1);
      }
    }
    return roles.map((role) => found.get(role) ?? null);
  }

  /**
   * Every picture decoded and stored as PNG at the size asked for, whatever
   * the backend sent. A flat one (safety filter, float16 overflow) is painted
   * once more with another seed, then dropped with a warning. Null where a
   * picture was dropped or could not be read.
   */
  private async checkPictures(
    run: Run,
    images: ImageGenerator,
    toPaint: { role: Role; request: ImageRequest }[],
    pictures: GeneratedPicture[],
  ): Promise<(GeneratedPicture | null)[]> {
    const check = async (picture: GeneratedPicture, { role, request }: { role: Role; request: ImageRequest }) => {
      try {
        const checked = await checkPicture(picture.png, request, images.description);
        return { ...checked, seed: picture.seed };
      } catch (error) {
        await run.reporter.warn(`The ${ROLES[role].label} image could not be used: ${describeFailure(error)}`);
        return null;
      }
    };
    const checked = await Promise.all(pictures.map((picture, index) => check(picture, toPaint[index])));
    const flat = checked.flatMap((picture, index) => (picture?.flat ? [index] : []));
    if (flat.length === 0) return checked;
    const again = flat.map((index) => ({
      ...toPaint[index],
      request: { ...toPaint[index].request, seed: (toPaint[index].request.seed + REPAINT_SEED_STEP) % MAX_SEED },
    }));
    let repainted: GeneratedPicture[] = [];
    try {
      repainted = await images.generate(
        again.map((item) => item.request),
        { signal: run.signal },
      );
    } catch (error) {
      run.signal.throwIfAborted();
      run.logger.warn({ err: error }, 'repainting a flat picture failed');
    }
    for (const [position, index] of flat.entries()) {
      const picture = repainted[position] ? await check(repainted[position], again[position]) : null;
      checked[index] = picture && !picture.flat ? picture : null;
      if (!checked[index]) {
        await run.reporter.warn(
          `The ${ROLES[toPaint[index].role].label} image came out as one flat colour twice (as a safety filter or a float16 overflow in the model gives), so it was dropped.`,
        );
      }
    }
    return checked;
  }

  private async composite(run: Run, story: Story, existing: GeneratedImage[], character: Painted, background: Painted): Promise<void> {
    if (existing.some((image) => image.imageType === ImageType.COMBINED)) return;
    if (!character || !background) {
      await run.reporter.warn('The combined illustration was skipped because the character or background image is missing.');
      return;
    }
    await run.reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.compositing, run.reporter.currentPercent);
    try {
      const combined = await compositeCharacter(character.png, background.png, this.deps.compositing);
      run.signal.throwIfAborted();
      await this.saveImage(story, ImageType.COMBINED, combined, `${character.image.promptUsed} | ${background.image.promptUsed}`, null);
      this.advance(run, 'composite', 1);
    } catch (error) {
      run.signal.throwIfAborted();
      await run.reporter.warn(`The combined illustration could not be made: ${describeFailure(error)}`);
    }
  }

  // --- helpers ----------------------------------------------------------------------------

  private imageRequest(session: GenerationSession, role: Role, prompt: string): ImageRequest {
    const base = session.options.seed;
    // A fixed seed gives both pictures distinct, reproducible seeds.
    const seed = base === null ? randomInt(0, MAX_SEED) : (base + (role === 'character' ? 0 : 1)) % (MAX_SEED + 1);
    const style = session.options.style ? `, ${session.options.style} style` : '';
    return { prompt: `${prompt}${style}`, negativePrompt: NEGATIVE_PROMPT, seed, ...this.deps.imageSize };
  }

  private async saveImage(
    story: Story,
    imageType: ImageType,
    picture: { png: Buffer; width: number; height: number },
    promptUsed: string,
    seed: number | null,
  ): Promise<GeneratedImage> {
    const filePath = await this.deps.media.save(picture.png, 'png');
    const saved = await this.deps.repository.saveImageOnce({
      id: randomUUID(),
      storyId: story.id,
      imageType,
      filePath,
      width: picture.width,
      height: picture.height,
      promptUsed,
      seed: seed !== null && seed >= 0 && seed <= MAX_SEED ? seed : null,
    });
    // Another run got there first: its file is the one on record.
    if (saved.filePath !== filePath) await this.deps.media.remove(filePath);
    return saved;
  }

  private advance(run: Run, part: ImageStagePart, fraction: number): void {
    run.meter.set(part, fraction);
    run.reporter.progress(run.meter.percent());
  }
}
