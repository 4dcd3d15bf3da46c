import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InProcessProgressBus } from '../../src/adapters/progress/in-process-progress-bus.js';
import { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, ImageType } from '../../src/entities/index.js';
import {
  ImageGenerationError,
  type GeneratedPicture,
  type ImageGenerationOptions,
  type ImageGenerator,
  type ImageRequest,
  type ImageToImageRequest,
} from '../../src/ports/image-generator.js';
import { RetryLater } from '../../src/ports/job-queue.js';
import { InMemoryMediaStore as MemoryMedia } from '../support/in-memory-media-store.js';
import type { ProgressUpdate } from '../../src/ports/progress-bus.js';
import {
  TextGenerationError,
  VisualSubject,
  type BookPlan,
  type PageDraft,
  type PlanRequest,
  type TextGenerator,
  type TextGenerators,
  type WritePageRequest,
} from '../../src/ports/text-generator.js';
import { GenerationPipeline, type PipelineDependencies } from '../../src/services/generation/generation-pipeline.js';
import { STAGE, type GenerationStage } from '../../src/services/progress/progress-plan.js';
import { GenerationCancelled } from '../../src/services/errors.js';
import { WARNING } from '../../src/services/generation/warnings.js';
import { InMemoryRepositories } from '../support/in-memory-repositories.js';
import { InMemoryGenerationMetrics } from '../support/in-memory-generation-metrics.js';
import { InProcessJobQueue } from '../../src/adapters/jobs/in-process-job-queue.js';
import { GenerationService } from '../../src/services/generation/generation-service.js';
import { SINGLE_USER } from '../../src/services/auth/viewer.js';
import { type DownloadOutcome, type ModelDownloadWaits, SetupComponent } from '../../src/ports/setup.js';
import { fixedTextGenerators } from '../../src/services/text/fixed-text-generators.js';

const SIZE = { width: 64, height: 64 };

/** A plan as a model would give it: page i's scene is "scene i …", the character a fox. */
function planFor(pageCount: number): BookPlan {
  return {
    title: 'The Fox Who Counted Stars',
    characterSheet: 'a small red fox, green scarf',
    pages: Array.from({ length: pageCount }, (_, index) => ({
      outline: `The fox does thing ${index}.`,
      sceneDescription: `scene ${index} a pine forest at night`,
      characterSide: [CharacterSide.LEFT, CharacterSide.CENTRE, CharacterSide.RIGHT][index % 3],
      characterDistance: index % 2 === 0 ? CharacterDistance.NEAR : CharacterDistance.FAR,
    })),
  };
}

/** Scripted text agents: streams each page in three pieces; faults and pauses are set per test. */
class ScriptedText implements TextGenerator {
  readonly written: number[] = [];
  plans = 0;
  planFailure: Error | null = null;
  /** Page index → error thrown after that page's first piece was streamed. */
  readonly pageFailures = new Map<number, Error>();
  /** Called before a page is written; a test may abort or wait here. */
  beforePage: (index: number) => Promise<void> | void = () => undefined;

  async planBook({ pageCount }: PlanRequest): Promise<BookPlan> {
    this.plans += 1;
    if (this.planFailure) throw this.planFailure;
    return planFor(pageCount);
  }

  async writePage({ index, onText, signal }: WritePageRequest): Promise<PageDraft> {
    await this.beforePage(index);
    signal.throwIfAborted();
    this.written.push(index);
    const text = `Page ${index} begins. The fox walks on. The end of page ${index}.`;
    const pieces = [text.slice(0, 15), text.slice(15, 40), text.slice(40)];
    onText(pieces[0]);
    const failure = this.pageFailures.get(index);
    if (failure) throw failure;
    for (const piece of pieces.slice(1)) onText(piece);
    return { text, warnings: [], streamed: { tokens: pieces.length, seconds: 0.5 } };
  }

  /** Subjects described, in order; only stories saved before books (no plan) need it. */
  readonly described: VisualSubject[] = [];

  async describe(subject: VisualSubject): Promise<string> {
    this.described.push(subject);
    return subject === VisualSubject.CHARACTER ? 'a grey hare, blue coat' : 'scene 0 a windy hill at noon';
  }

  async checkAvailable(): Promise<void> {}
}

/** Paints real PNGs: the character a dark block on white (so it mattes), scenes a gradient. Fails on prompts a test names. */
class ScriptedPainter implements ImageGenerator {
  readonly description = 'scripted painter';
  readonly calls: string[][] = [];
  readonly failOn: RegExp[] = [];

  constructor(readonly prefersBatches: boolean) {}

  async generate(requests: ImageRequest[], { signal, onProgress }: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    this.calls.push(requests.map((request) => request.prompt));
    signal.throwIfAborted();
    onProgress?.(0.5);
    const failing = requests.find((request) => this.failOn.some((pattern) => pattern.test(request.prompt)));
    if (failing) throw new ImageGenerationError(`the scripted painter refuses "${failing.prompt.slice(0, 20)}"`);
    return Promise.all(requests.map(async (request) => ({ png: await picture(request), width: request.width, height: request.height, seed: request.seed })));
  }
}

/** A painter that also does image-to-image: it answers with the init image tinted red, so its work is recognisable. */
class HarmonizingPainter extends ScriptedPainter {
  readonly harmonized: ImageToImageRequest[] = [];
  harmonizeFailure: Error | null = null;

  async imageToImage(requests: ImageToImageRequest[]): Promise<GeneratedPicture[]> {
    this.harmonized.push(...requests);
    if (this.harmonizeFailure) throw this.harmonizeFailure;
    return Promise.all(
      requests.map(async (request) => ({
        png: await sharp(request.initImage).tint({ r: 255, g: 0, b: 0 }).png().toBuffer(),
        width: request.width,
        height: request.height,
        seed: request.seed,
      })),
    );
  }
}

async function picture(request: ImageRequest): Promise<Buffer> {
  const { width, height } = request;
  const data = Buffer.alloc(width * height * 3);
  const character = request.prompt.includes('plain white background');
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      const inFigure = x > width / 3 && x < (2 * width) / 3 && y > height / 5 && y < height - 4;
      const value = character ? (inFigure ? 40 : 255) : (x * 4 + y * 2) % 256;
      data[at] = value;
      data[at + 1] = character ? value : (y * 4) % 256;
      data[at + 2] = character ? value : 128;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

class RecordingBus extends InProcessProgressBus {
  readonly updates: ProgressUpdate[] = [];
  override async publish(update: ProgressUpdate): Promise<void> {
    this.updates.push(update);
    await super.publish(update);
  }
}

interface Setup {
  pageCount?: number;
  batching?: boolean;
  seed?: number | null;
  /** Shared with another setup, to race two runs over one session. */
  repositories?: InMemoryRepositories;
  media?: MemoryMedia;
  sessionId?: string;
  /** A painter with image-to-image, and the strength of the harmonising pass. */
  harmonize?: number;
  batchSize?: number;
  /** Model downloads the run may wait for. */
  downloads?: ModelDownloadWaits;
  /** No painter until this returns true (a picture model downloaded while the server runs). */
  paintingFrom?: () => boolean;
  /** The lease says its backend has its model (TEXT_BACKEND unset, the model on hand); unset, it says nothing, as with TEXT_BACKEND set. */
  textModelPresent?: boolean;
}

async function setup({
  pageCount = 3,
  batching = true,
  seed = 7,
  repositories = new InMemoryRepositories(),
  media = new MemoryMedia(),
  sessionId,
  harmonize,
  batchSize = 8,
  downloads,
  paintingFrom = () => true,
  textModelPresent,
}: Setup = {}) {
  const text = new ScriptedText();
  const painter = harmonize === undefined ? new ScriptedPainter(batching) : new HarmonizingPainter(batching);
  const bus = new RecordingBus();
  const metrics = new InMemoryGenerationMetrics();
  const id = sessionId ?? randomUUID();
  if (!sessionId)
    await repositories.createSession({
      id,
      prompt: 'a fox who counts stars',
      options: { kind: GenerationKind.BOOK, style: null, seed, pageCount },
      stage: STAGE.queued,
      ownerId: null,
    });
  const deps: PipelineDependencies = {
    sessions: repositories,
    books: repositories,
    images: repositories,
    text:
      textModelPresent === undefined
        ? fixedTextGenerators('scripted', text)
        : { forGeneration: async () => ({ backend: 'scripted', text, modelPresent: textModelPresent, release: () => {} }) },
    get painter() {
      return paintingFrom() ? painter : null;
    },
    downloads,
    media,
    bus,
    logger: pino({ level: 'silent' }),
    metrics,
    imageSize: SIZE,
    compositing: { maxInputPixels: 10_000_000 },
    harmonizeStrength: harmonize ?? 0.3,
    imageBatchSize: batchSize,
    maxRunsPerSession: 5,
    heartbeatMs: 60_000,
  };
  const pipeline = new GenerationPipeline(deps);
  const controller = new AbortController();
  const run = (attempt = 1) => pipeline.run({ sessionId: id, attempt, maxAttempts: 3, signal: controller.signal });
  const session = () => repositories.requireSession(id);
  const story = async () => repositories.requireStory((await session()).storyId!);
  const images = async () => repositories.findImagesByStoryIds([(await session()).storyId!]);
  const imageKeys = async () => (await images()).map((image) => `${image.imageType}:${image.pageIndex}`).sort();
  /** The top-left pixel (scene, never character) of a page's picture of the type given. */
  const pixel = async (imageType: ImageType, page: number) => {
    const image = (await images()).find((candidate) => candidate.imageType === imageType && candidate.pageIndex === page)!;
    const { data } = await sharp(await media.read(image.filePath))
      .raw()
      .toBuffer({ resolveWithObject: true });
    return [...data.subarray(0, 3)];
  };
  const combinedPixel = (page: number) => pixel(ImageType.COMBINED, page);
  return { repositories, text, painter, media, bus, metrics, id, run, controller, session, story, images, imageKeys, pixel, combinedPixel, pipeline, deps };
}

function allKeys(pageCount: number): string[] {
  const keys = ['CHARACTER:null'];
  for (let page = 0; page < pageCount; page++) keys.push(`BACKGROUND:${page}`, `COMBINED:${page}`);
  return keys.sort();
}

function expectNeverDecreasing(updates: ProgressUpdate[]): void {
  const percents = updates.map((update) => update.progressPercentage);
  expect(percents).toEqual([...percents].sort((a, b) => a - b));
}

describe('GenerationPipeline making a book', () => {
  it('plans, writes every page and paints the character once plus one scene per page in one batched call', async () => {
    const book = await setup({ pageCount: 3, batching: true });
    await book.run();
    const session = await book.session();
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warnings).toEqual([]);
    expect(book.text.written).toEqual([0, 1, 2]);
    expect(book.painter.calls).toHaveLength(1);
    expect(book.painter.calls[0]).toHaveLength(4);
    expect(book.painter.calls[0][0]).toMatch(/^a small red fox, green scarf, full body/);
    expect(await book.imageKeys()).toEqual(allKeys(3));
    const pages = await book.repositories.findPages((await book.story()).id);
    expect(pages.map((page) => page.text)).toEqual([0, 1, 2].map((i) => `Page ${i} begins. The fox walks on. The end of page ${i}.`));
    expect((await book.story()).storyText).toBe(pages.map((page) => page.text).join('\n\n'));
  });

  it('keeps a run on the text generator it was handed at its start, and hands it back once at the end, failed or not', async () => {
    const book = await setup({ pageCount: 3 });
    // A new generator at every ask, as TEXT_BACKEND unset may give when Ollama comes or goes.
    const handedOut: ScriptedText[] = [];
    let released = 0;
    const text: TextGenerators = {
      forGeneration: async () => {
        const generator = new ScriptedText();
        handedOut.push(generator);
        return { backend: `backend ${handedOut.length}`, text: generator, release: () => void released++ };
      },
    };
    await new GenerationPipeline({ ...book.deps, text }).run({ sessionId: book.id, attempt: 1, maxAttempts: 3, signal: new AbortController().signal });
    expect((await book.session()).status).toBe(GenerationStatus.COMPLETED);
    expect(handedOut).toHaveLength(1);
    expect(handedOut[0]).toMatchObject({ plans: 1, written: [0, 1, 2] });
    expect(released).toBe(1);

    const failing = await setup({ pageCount: 2 });
    failing.text.planFailure = new TextGenerationError('the model said nothing useful', 'bad-output');
    let failedReleases = 0;
    const once: TextGenerators = { forGeneration: async () => ({ backend: 'scripted', text: failing.text, release: () => void failedReleases++ }) };
    await new GenerationPipeline({ ...failing.deps, text: once }).run({
      sessionId: failing.id,
      attempt: 1,
      maxAttempts: 1,
      signal: new AbortController().signal,
    });
    expect((await failing.session()).status).toBe(GenerationStatus.FAILED);
    expect(failedReleases).toBe(1);
  });

  it('streams text deltas that carry their page and join into storyText, with progress that never goes back', async () => {
    const book = await setup({ pageCount: 3 });
    await book.run();
    const updates = book.bus.updates;
    const text = updates.filter((update) => update.storyTextDelta !== null && !update.storyTextReset);
    expect(new Set(text.map((update) => update.pageIndex))).toEqual(new Set([0, 1, 2]));
    expect(text.map((update) => update.storyTextDelta).join('')).toBe((await book.story()).storyText);
    expectNeverDecreasing(updates);
    expect(updates.at(-1)).toMatchObject({ status: GenerationStatus.COMPLETED, progressPercentage: 100 });
    // Every saved picture is announced with the page it belongs to.
    const pictureEvents = updates.filter((update) => update.pageIndex !== null && update.storyTextDelta === null);
    expect(new Set(pictureEvents.map((update) => update.pageIndex))).toEqual(new Set([0, 1, 2]));
  });

  it('shows a book of several pages from its plan on, and a one-page story only once it has text', async () => {
    const book = await setup({ pageCount: 2 });
    const story = await setup({ pageCount: 1 });
    await Promise.all([book.run(), story.run()]);
    const firstWithId = (updates: ProgressUpdate[]) => updates.find((update) => update.storyId !== null)!;
    expect(firstWithId(book.bus.updates).storyTextDelta).toBeNull();
    expect(book.bus.updates.indexOf(firstWithId(book.bus.updates))).toBeLessThan(book.bus.updates.findIndex((update) => update.storyTextDelta));
    expect(story.bus.updates.indexOf(firstWithId(story.bus.updates))).toBeGreaterThan(story.bus.updates.findIndex((update) => update.storyTextDelta));
  });

  it('splits a book into calls of at most IMAGE_BATCH_SIZE pictures on a backend that batches, character first', async () => {
    const book = await setup({ pageCount: 5, batching: true, batchSize: 4 });
    await book.run();
    expect(book.painter.calls.map((call) => call.length)).toEqual([4, 2]);
    expect(book.painter.calls[0][0]).toContain('red fox');
    expect(await book.imageKeys()).toEqual(allKeys(5));
  });

  it('paints one picture per call, character first, on a backend that does not batch', async () => {
    const book = await setup({ pageCount: 3, batching: false });
    await book.run();
    expect(book.painter.calls.map((call) => call.length)).toEqual([1, 1, 1, 1]);
    expect(book.painter.calls[0][0]).toContain('red fox');
    expect(book.painter.calls.slice(1).map((call) => call[0].slice(0, 7))).toEqual(['scene 0', 'scene 1', 'scene 2']);
    expect(await book.imageKeys()).toEqual(allKeys(3));
  });

  it('gives every picture of a book a distinct seed derived from a fixed one', async () => {
    const book = await setup({ pageCount: 2, seed: 100 });
    await book.run();
    const seeds = (await book.images())
      .filter((image) => image.imageType !== ImageType.COMBINED)
      .map((image) => image.seed)
      .sort();
    expect(seeds).toEqual([100, 101, 102]);
  });

  it('keeps finished pages and pictures when resumed, and does only what is missing', async () => {
    const first = await setup({ pageCount: 3, batching: false });
    // The first run stops for good while page 2 is being written.
    first.text.beforePage = (index) => {
      if (index === 2) first.controller.abort(new Error('worker killed'));
    };
    await first.run();
    expect((await first.session()).status).toBe(GenerationStatus.GENERATING_STORY);
    const pagesBefore = await first.repositories.findPages((await first.story()).id);
    expect(pagesBefore.map((page) => page.text !== '')).toEqual([true, true, false]);
    const imagesBefore = await first.images();

    const second = await setup({ repositories: first.repositories, media: first.media, sessionId: first.id, batching: false });
    await second.run(2);
    expect((await second.session()).status).toBe(GenerationStatus.COMPLETED);
    expect(second.text.plans).toBe(0);
    expect(second.text.written).toEqual([2]);
    const repainted = second.painter.calls.flat();
    for (const image of imagesBefore.filter((candidate) => candidate.imageType !== ImageType.COMBINED)) {
      expect(repainted).not.toContain(image.promptUsed);
    }
    expect(await second.imageKeys()).toEqual(allKeys(3));
    expect(imagesBefore.every((image) => second.repositories.images.some((kept) => kept.id === image.id))).toBe(true);
    // Subscribers are first told the text is what was saved, without the page cut off mid-stream.
    const reset = second.bus.updates.find((update) => update.storyTextReset && update.storyTextDelta);
    expect(reset?.storyTextDelta).toBe(
      pagesBefore
        .slice(0, 2)
        .map((page) => page.text)
        .join('\n\n'),
    );
  });

  it("keeps a page's text and warns, naming the page, when its scene cannot be painted", async () => {
    const book = await setup({ pageCount: 3, batching: false });
    book.painter.failOn.push(/^scene 1 /);
    await book.run();
    const session = await book.session();
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warnings).toEqual([expect.stringMatching(/^Page 2's scene could not be painted; the page keeps its text: the scripted painter refuses/)]);
    expect(await book.imageKeys()).toEqual(allKeys(3).filter((key) => !key.endsWith(':1')));
    expect((await book.repositories.findPages((await book.story()).id))[1].text).toMatch(/^Page 1 begins/);
  });

  it('keeps every scene and says so when the character cannot be painted', async () => {
    const book = await setup({ pageCount: 2, batching: false });
    book.painter.failOn.push(/plain white background/);
    await book.run();
    const session = await book.session();
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warnings).toEqual([
      expect.stringMatching(/^The character picture could not be painted, so the pages show their scenes without the character/),
    ]);
    expect(await book.imageKeys()).toEqual(['BACKGROUND:0', 'BACKGROUND:1']);
  });

  it('stops between steps when cancelled: nothing more is written, painted or saved', async () => {
    const book = await setup({ pageCount: 3, batching: false });
    book.text.beforePage = async (index) => {
      if (index !== 1) return;
      // The cancel lands (as GenerationService does it) between page 0 and page 1.
      await book.repositories.updateRunningSession(book.id, {
        status: GenerationStatus.CANCELLED,
        stage: STAGE.cancelled.label,
        stageCode: STAGE.cancelled.code,
      });
      book.controller.abort(new Error('cancelled'));
    };
    await book.run();
    expect(book.text.written).toEqual([0]);
    const pages = await book.repositories.findPages((await book.story()).id);
    expect(pages.map((page) => page.text !== '')).toEqual([true, false, false]);
    expect((await book.session()).status).toBe(GenerationStatus.CANCELLED);
    const callsAfterCancel = book.repositories.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(book.repositories.calls.length).toBe(callsAfterCancel);
    expect(book.bus.updates.some((update) => update.status === GenerationStatus.COMPLETED)).toBe(false);
  });

  it('saves no picture file when the generation was cancelled while the backend was still painting', async () => {
    const book = await setup({ pageCount: 1 });
    const paint = book.painter.generate.bind(book.painter);
    // The backend finishes its pictures although the run was cancelled meanwhile (an HTTP answer already on its way).
    book.painter.generate = async (requests, options) => {
      const pictures = await paint(requests, { ...options, signal: new AbortController().signal });
      await book.repositories.updateRunningSession(book.id, {
        status: GenerationStatus.CANCELLED,
        stage: STAGE.cancelled.label,
        stageCode: STAGE.cancelled.code,
      });
      book.controller.abort(new Error('cancelled'));
      return pictures;
    };
    await book.run();
    expect((await book.session()).status).toBe(GenerationStatus.CANCELLED);
    expect([...book.media.files.keys()]).toEqual([]);
  });

  it('removes a picture file whose story was deleted before its record could be saved', async () => {
    const book = await setup({ pageCount: 1 });
    const paint = book.painter.generate.bind(book.painter);
    // Another process deleted the story (after a cancel this one had not heard of yet) while its pictures were painted.
    book.painter.generate = async (requests, options) => {
      const pictures = await paint(requests, options);
      await book.repositories.deleteStory((await book.session()).storyId!);
      return pictures;
    };
    await book.run();
    expect([...book.media.files.keys()]).toEqual([]);
  });

  it('asks for another attempt when the plan fails on a dead server before any text was shown', async () => {
    const book = await setup();
    book.text.planFailure = new TextGenerationError('Ollama is not reachable', 'unreachable');
    await expect(book.run()).rejects.toBeInstanceOf(RetryLater);
    expect((await book.session()).status).not.toBe(GenerationStatus.FAILED);
  });

  it('fails instead of starting over once page text has been shown, and keeps the pages written', async () => {
    const book = await setup({ pageCount: 3 });
    book.text.pageFailures.set(1, new TextGenerationError('The connection to Ollama broke', 'stream-dropped'));
    await book.run();
    const session = await book.session();
    expect(session.status).toBe(GenerationStatus.FAILED);
    expect(session.errorMessage).toBe('The connection to Ollama broke');
    expect((await book.repositories.findPages(session.storyId!))[0].text).toMatch(/^Page 0 begins/);
  });

  it('deletes a book that fails before any page was written, with the pictures already painted for it', async () => {
    const book = await setup({ pageCount: 2, batching: false });
    book.text.beforePage = () => {
      throw new TextGenerationError('Model llama3.2 returned no usable text while writing page 1 of 2', 'bad-output');
    };
    await book.run();
    const session = await book.session();
    expect(session).toMatchObject({ status: GenerationStatus.FAILED, errorMessage: 'Model llama3.2 returned no usable text while writing page 1 of 2' });
    expect(book.repositories.stories.size).toBe(0);
    expect(book.repositories.pages).toEqual([]);
    expect(book.repositories.images).toEqual([]);
    expect(book.media.files.size).toBe(0);
    expect(session.storyId).toBeNull();
  });

  it("fails with the model's message when no usable plan comes back", async () => {
    const book = await setup();
    book.text.planFailure = new TextGenerationError('Model llama3.2 did not give the JSON answer asked for while planning the book (twice)', 'bad-output');
    await book.run();
    expect(await book.session()).toMatchObject({ status: GenerationStatus.FAILED, errorMessage: expect.stringMatching(/planning the book/) });
  });

  it('harmonises each composite with a light image-to-image pass where the backend has one', async () => {
    const book = await setup({ pageCount: 2, harmonize: 0.3 });
    await book.run();
    const painter = book.painter as HarmonizingPainter;
    expect((await book.session()).warnings).toEqual([]);
    expect(painter.harmonized.map((request) => [request.strength, request.width, request.height])).toEqual([
      [0.3, 64, 64],
      [0.3, 64, 64],
    ]);
    expect(painter.harmonized[0].prompt).toMatch(/^a small red fox, green scarf, scene \d a pine forest/);
    // The saved illustration is the harmonised one (tinted red by the fake), not the plain composite.
    expect(await book.combinedPixel(1)).not.toEqual(await book.pixel(ImageType.BACKGROUND, 1));
    const [r, g, b] = await book.combinedPixel(1);
    expect(r).toBeGreaterThan(g);
    expect(r).toBeGreaterThan(b);
  });

  it('keeps the plain composite, with no warning, when harmonising fails or is off', async () => {
    const failing = await setup({ pageCount: 2, harmonize: 0.3 });
    (failing.painter as HarmonizingPainter).harmonizeFailure = new ImageGenerationError('img2img is busy');
    const off = await setup({ pageCount: 2, harmonize: 0 });
    await Promise.all([failing.run(), off.run()]);
    for (const book of [failing, off]) {
      expect(await book.session()).toMatchObject({ status: GenerationStatus.COMPLETED, warnings: [] });
      expect(await book.imageKeys()).toEqual(allKeys(2));
    }
    expect((failing.painter as HarmonizingPainter).harmonized).toHaveLength(2);
    expect((off.painter as HarmonizingPainter).harmonized).toHaveLength(0);
    // The plain composite: its corner is the scene's corner, untouched.
    for (const book of [failing, off]) expect(await book.combinedPixel(1)).toEqual(await book.pixel(ImageType.BACKGROUND, 1));
  });

  it('illustrates a story saved before books (one page with text, no descriptions) by describing its character and scene first', async () => {
    const book = await setup({ pageCount: 1 });
    // What the books migration leaves of a story whose run was interrupted before its descriptions.
    const storyId = randomUUID();
    book.repositories.stories.set(storyId, {
      id: storyId,
      title: 'The Hare',
      prompt: 'a hare',
      storyText: 'A hare ran up the hill.',
      characterDescription: '',
      backgroundDescription: '',
      style: null,
      createdAt: new Date(),
      ownerId: null,
    });
    book.repositories.pages.push({
      id: randomUUID(),
      storyId,
      index: 0,
      text: 'A hare ran up the hill.',
      outline: '',
      sceneDescription: '',
      characterSide: CharacterSide.CENTRE,
      characterDistance: CharacterDistance.NEAR,
      createdAt: new Date(),
    });
    book.repositories.sessions.get(book.id)!.storyId = storyId;
    await book.run();
    expect(await book.session()).toMatchObject({ status: GenerationStatus.COMPLETED, warnings: [] });
    expect(book.text.plans).toBe(0);
    expect(book.text.written).toEqual([]);
    expect(book.text.described.sort()).toEqual([VisualSubject.CHARACTER, VisualSubject.SCENE]);
    expect(await book.story()).toMatchObject({ characterDescription: 'a grey hare, blue coat', backgroundDescription: 'scene 0 a windy hill at noon' });
    expect(await book.imageKeys()).toEqual(allKeys(1));
  });

  it('saves one book, one text per page and one picture per page and kind when two runs race', async () => {
    const first = await setup({ pageCount: 3 });
    const second = await setup({ repositories: first.repositories, sessionId: first.id });
    await Promise.all([first.run(), second.run()]);
    expect(first.repositories.stories.size).toBe(1);
    expect(first.repositories.pages).toHaveLength(3);
    expect(await first.imageKeys()).toEqual(allKeys(3));
    expect((await first.session()).status).toBe(GenerationStatus.COMPLETED);
    // The loser's files were removed: every stored file is one on record.
    const onRecord = new Set(first.repositories.images.map((image) => image.filePath));
    expect([...first.media.files.keys(), ...second.media.files.keys()].filter((key) => !onRecord.has(key))).toEqual([]);
  });
});

describe('GenerationPipeline reporting metrics', () => {
  it('records the queue wait, every step, pictures painted, tokens streamed and the outcome of a generation', async () => {
    const book = await setup({ pageCount: 2, batching: false });
    await book.run();
    expect(book.metrics.queueWaits).toHaveLength(1);
    expect(book.metrics.queueWaits[0]).toBeGreaterThanOrEqual(0);
    expect(book.metrics.stageCounts()).toEqual({ plan: 1, write_page: 2, paint: 3, composite: 2 });
    expect(book.metrics.painted.map(({ count }) => count)).toEqual([1, 1, 1]);
    expect(book.metrics.streamed).toEqual([
      { tokens: 3, seconds: 0.5 },
      { tokens: 3, seconds: 0.5 },
    ]);
    expect(book.metrics.ended).toEqual([GenerationStatus.COMPLETED]);
  });

  it('counts a batched call as one paint step with all its pictures', async () => {
    const book = await setup({ pageCount: 3, batching: true });
    await book.run();
    expect(book.metrics.painted.map(({ count }) => count)).toEqual([4]);
    expect(book.metrics.stageCounts().paint).toBe(1);
  });

  it('records a failed generation with the text failure kind as its reason, and does not time the failed step', async () => {
    const book = await setup({ pageCount: 2 });
    book.text.planFailure = new TextGenerationError('the model gave no plan', 'bad-output');
    await book.run();
    expect((await book.session()).status).toBe(GenerationStatus.FAILED);
    expect(book.metrics.ended).toEqual([{ failed: 'bad-output' }]);
    expect(book.metrics.stageCounts()).toEqual({});
  });

  it('records a failure that is no known kind as unexpected', async () => {
    const book = await setup({ pageCount: 1 });
    book.text.planFailure = new Error('a bug');
    await book.run();
    expect(book.metrics.ended).toEqual([{ failed: 'unexpected' }]);
  });

  it('records no outcome for a run that was stopped (it is resumed or cancelled elsewhere), and no queue wait for a later run', async () => {
    const first = await setup({ pageCount: 2 });
    first.text.beforePage = (index) => {
      if (index === 1) first.controller.abort(new Error('worker killed'));
    };
    await first.run();
    expect(first.metrics.ended).toEqual([]);
    const second = await setup({ repositories: first.repositories, media: first.media, sessionId: first.id });
    await second.run(2);
    expect(second.metrics.queueWaits).toEqual([]);
    expect(second.metrics.ended).toEqual([GenerationStatus.COMPLETED]);
  });
});

describe('GenerationPipeline painting one page of a saved book again', () => {
  type Book = Awaited<ReturnType<typeof setup>>;

  /** A finished book of `pageCount` pages, made with the painter given (harmonising when `harmonize` is set). */
  async function finishedBook(options: Setup = {}) {
    const book = await setup({ pageCount: 3, batching: false, ...options });
    await book.run();
    expect((await book.session()).status).toBe(GenerationStatus.COMPLETED);
    book.painter.calls.length = 0;
    book.bus.updates.length = 0;
    return book;
  }

  type RepaintOptions = { pageIndex: number; seed?: number | null; redescribe?: boolean };

  async function queueRepaint(book: Book, options: RepaintOptions, sessionId: string): Promise<void> {
    await book.repositories.createSession({
      id: sessionId,
      prompt: 'a fox who counts stars',
      options: {
        kind: GenerationKind.PAGE_REPAINT,
        style: null,
        seed: options.seed ?? null,
        pageIndex: options.pageIndex,
        redescribe: options.redescribe ?? false,
      },
      stage: STAGE.queued,
      ownerId: null,
      storyId: (await book.session()).storyId,
    });
  }

  /** Queues a repaint session of the book's page and runs it once; returns the session's id and the run's controller. */
  async function repaint(book: Book, options: RepaintOptions, sessionId: string = randomUUID()) {
    if (!(await book.repositories.findSession(sessionId))) await queueRepaint(book, options, sessionId);
    const controller = new AbortController();
    return { sessionId, controller, done: book.pipeline.run({ sessionId, attempt: 1, maxAttempts: 3, signal: controller.signal }) };
  }

  const pictures = async (book: Book) => Object.fromEntries((await book.images()).map((image) => [`${image.imageType}:${image.pageIndex}`, image]));

  it("paints only that page's scene with the seed given, places the same character, and removes the old pictures and files", async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const { sessionId, done } = await repaint(book, { pageIndex: 1, seed: 4242 });
    await done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session).toMatchObject({ status: GenerationStatus.COMPLETED, progressPercentage: 100, warnings: [] });
    // One call, one scene: the character is never painted again.
    expect(book.painter.calls).toEqual([[expect.stringMatching(/^scene 1 a pine forest at night/)]]);
    const after = await pictures(book);
    expect(Object.keys(after).sort()).toEqual(allKeys(3));
    for (const key of ['CHARACTER:null', 'BACKGROUND:0', 'COMBINED:0', 'BACKGROUND:2', 'COMBINED:2']) expect(after[key]).toEqual(before[key]);
    expect(after['BACKGROUND:1'].id).not.toBe(before['BACKGROUND:1'].id);
    expect(after['BACKGROUND:1'].seed).toBe(4242);
    expect(after['COMBINED:1'].id).not.toBe(before['COMBINED:1'].id);
    expect(book.media.files.has(before['BACKGROUND:1'].filePath)).toBe(false);
    expect(book.media.files.has(before['COMBINED:1'].filePath)).toBe(false);
    expect(book.media.files.size).toBe(7);
    // The composite is the character on the new scene: its corner is the new scene's corner.
    expect(await book.pixel(ImageType.COMBINED, 1)).toEqual(await book.pixel(ImageType.BACKGROUND, 1));
    expect(await book.repositories.findDraftImages(sessionId)).toEqual([]);
  });

  it('reports every event about that page, with no story text and progress that never goes back', async () => {
    const book = await finishedBook();
    const { sessionId, done } = await repaint(book, { pageIndex: 2 });
    await done;
    const updates = book.bus.updates.filter((update) => update.sessionId === sessionId);
    expect(updates.length).toBeGreaterThan(2);
    expect(updates.every((update) => update.pageIndex === 2 && update.storyTextDelta === null)).toBe(true);
    expect(updates.map((update) => update.stageCode)).toContain(STAGE.repaintingPage.code);
    expectNeverDecreasing(updates);
    expect(updates.at(-1)).toMatchObject({ status: GenerationStatus.COMPLETED, progressPercentage: 100, storyId: (await book.session()).storyId });
  });

  it('describes the scene again from the page text first with redescribe, and keeps the new description with the new picture', async () => {
    const book = await finishedBook();
    const { sessionId, done } = await repaint(book, { pageIndex: 0, redescribe: true });
    await done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.COMPLETED);
    expect(book.text.described).toEqual([VisualSubject.SCENE]);
    expect(book.painter.calls).toEqual([[expect.stringMatching(/^scene 0 a windy hill at noon/)]]);
    const [page0, page1] = await book.repositories.findPages((await book.story()).id);
    expect(page0.sceneDescription).toBe('scene 0 a windy hill at noon');
    expect((await book.story()).backgroundDescription).toBe('scene 0 a windy hill at noon');
    expect(page1.sceneDescription).toBe('scene 1 a pine forest at night');
    expect(book.bus.updates.map((update) => update.stageCode)).toContain(STAGE.describingScene.code);
  });

  it("leaves the page as it was when its scene cannot be painted, and fails with the painter's reason as a warning", async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const files = new Set(book.media.files.keys());
    // The scene described again is the one that fails.
    book.painter.failOn.push(/windy hill/);
    const { sessionId, done } = await repaint(book, { pageIndex: 1, redescribe: true });
    await done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.FAILED);
    expect(session.errorMessage).toMatch(/^Page 2 could not be painted again; it keeps its old picture/);
    expect(session.warnings).toEqual([expect.stringMatching(/^Page 2's scene could not be painted.*scripted painter refuses/)]);
    expect(await pictures(book)).toEqual(before);
    expect(new Set(book.media.files.keys())).toEqual(files);
    // The description written for the failed attempt is not the page's.
    expect((await book.repositories.findPages((await book.story()).id))[1].sceneDescription).toBe('scene 1 a pine forest at night');
    expect(book.metrics.ended).toContainEqual({ failed: 'page-repaint' });
  });

  it("fails without painting when the book's character picture cannot be read, and changes nothing", async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    book.media.files.delete(before['CHARACTER:null'].filePath);
    const files = new Set(book.media.files.keys());
    const { sessionId, done } = await repaint(book, { pageIndex: 1, seed: 7 });
    await done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.FAILED);
    expect(session.errorMessage).toMatch(/^The book's character picture could not be read or cut out, so page 2 was not painted again: /);
    expect(book.painter.calls).toEqual([]);
    expect(await pictures(book)).toEqual(before);
    expect(new Set(book.media.files.keys())).toEqual(files);
    expect(await book.repositories.findDraftImages(sessionId)).toEqual([]);
  });

  it('fails without painting when images are switched off on the worker, and changes nothing', async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const sessionId = randomUUID();
    await queueRepaint(book, { pageIndex: 2 }, sessionId);
    const withoutImages = new GenerationPipeline({ ...book.deps, painter: null });
    await withoutImages.run({ sessionId, attempt: 2, maxAttempts: 3, signal: new AbortController().signal });
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.FAILED);
    expect(session.errorMessage).toMatch(
      /^Images are switched off on this server \(IMAGE_BACKEND=none, or no picture model downloaded yet\), so page 3 was not painted again/,
    );
    expect(await pictures(book)).toEqual(before);
  });

  it('undoes a cancelled repaint: drafts and their files go, the page keeps its pictures', async () => {
    const book = await finishedBook({ harmonize: 0.3 });
    const before = await pictures(book);
    const files = new Set(book.media.files.keys());
    const painter = book.painter as HarmonizingPainter;
    const sessionId = randomUUID();
    let controller: AbortController | null = null;
    // Cancelled while the composite is being harmonised: the new scene is saved as a draft by then.
    painter.imageToImage = async () => {
      expect(await book.repositories.findDraftImages(sessionId)).toHaveLength(1);
      await book.repositories.updateRunningSession(sessionId, { status: GenerationStatus.CANCELLED });
      controller!.abort(new GenerationCancelled());
      throw new Error('aborted');
    };
    const started = await repaint(book, { pageIndex: 1 }, sessionId);
    controller = started.controller;
    await started.done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.CANCELLED);
    expect(await book.repositories.findDraftImages(sessionId)).toEqual([]);
    expect(await pictures(book)).toEqual(before);
    expect(new Set(book.media.files.keys())).toEqual(files);
  });

  it('resumes after a crash from the drafts it saved: the scene is not painted twice', async () => {
    const book = await finishedBook({ harmonize: 0.3 });
    const before = await pictures(book);
    const painter = book.painter as HarmonizingPainter;
    const sessionId = randomUUID();
    let controller: AbortController | null = null;
    const harmonize = painter.imageToImage.bind(painter);
    painter.imageToImage = async () => {
      controller!.abort(new Error('worker killed'));
      throw new Error('aborted');
    };
    const first = await repaint(book, { pageIndex: 1, redescribe: true }, sessionId);
    controller = first.controller;
    await first.done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.GENERATING_IMAGES);
    const [draft] = await book.repositories.findDraftImages(sessionId);
    expect(draft.imageType).toBe(ImageType.BACKGROUND);
    expect(await pictures(book)).toEqual(before);

    painter.imageToImage = harmonize;
    const second = await repaint(book, { pageIndex: 1, redescribe: true }, sessionId);
    await second.done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.COMPLETED);
    expect(book.painter.calls).toHaveLength(1);
    expect(book.text.described).toEqual([VisualSubject.SCENE]);
    const after = await pictures(book);
    expect(after['BACKGROUND:1'].id).toBe(draft.id);
    expect(after['COMBINED:1'].id).not.toBe(before['COMBINED:1'].id);
    expect(book.media.files.has(before['BACKGROUND:1'].filePath)).toBe(false);
  });

  it('resumes a run that crashed right after the swap by finishing it: nothing is painted or swapped again, the old files still go', async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const sessionId = randomUUID();
    const replace = book.repositories.replacePagePictures.bind(book.repositories);
    let swaps = 0;
    let controller: AbortController | null = null;
    // The worker dies once the swap is committed: before the old files are removed and the session is marked completed.
    book.repositories.replacePagePictures = async (...args) => {
      swaps += 1;
      const swapped = await replace(...args);
      if (swaps === 1) {
        controller!.abort(new Error('worker killed'));
        throw new Error('worker killed');
      }
      return swapped;
    };
    const first = await repaint(book, { pageIndex: 1 }, sessionId);
    controller = first.controller;
    await first.done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.GENERATING_IMAGES);
    const swapped = await pictures(book);
    expect(swapped['BACKGROUND:1'].id).not.toBe(before['BACKGROUND:1'].id);
    expect(book.media.files.has(before['BACKGROUND:1'].filePath)).toBe(true);

    const second = await repaint(book, { pageIndex: 1 }, sessionId);
    await second.done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.COMPLETED);
    expect(book.painter.calls).toHaveLength(1);
    expect(await pictures(book)).toEqual(swapped);
    expect(book.media.files.has(before['BACKGROUND:1'].filePath)).toBe(false);
    expect(book.media.files.has(before['COMBINED:1'].filePath)).toBe(false);
    expect(book.media.files.size).toBe(7);
  });

  it('finishes a run resumed after the swap even when the session is out of runs: the page already shows its new pictures', async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const sessionId = randomUUID();
    const replace = book.repositories.replacePagePictures.bind(book.repositories);
    let controller: AbortController | null = null;
    book.repositories.replacePagePictures = async (...args) => {
      await replace(...args);
      controller!.abort(new Error('worker killed'));
      throw new Error('worker killed');
    };
    const first = await repaint(book, { pageIndex: 1 }, sessionId);
    controller = first.controller;
    await first.done;
    // Restarts past the run limit (maxRunsPerSession 5) before a run got to finish it.
    book.repositories.sessions.get(sessionId)!.attempts = 5;
    const second = await repaint(book, { pageIndex: 1 }, sessionId);
    await second.done;
    expect(await book.repositories.requireSession(sessionId)).toMatchObject({ status: GenerationStatus.COMPLETED, errorMessage: null });
    expect(book.media.files.has(before['BACKGROUND:1'].filePath)).toBe(false);
    expect(book.media.files.has(before['COMBINED:1'].filePath)).toBe(false);
  });

  it('swaps the pictures of a cancelled repaint never, even when the cancel reaches the row only as the swap begins', async () => {
    const book = await finishedBook();
    const before = await pictures(book);
    const files = new Set(book.media.files.keys());
    const sessionId = randomUUID();
    const replace = book.repositories.replacePagePictures.bind(book.repositories);
    // The owner cancels while the worker is about to swap; the abort message has not reached it yet.
    book.repositories.replacePagePictures = async (...args) => {
      await book.repositories.updateRunningSession(sessionId, { status: GenerationStatus.CANCELLED });
      return replace(...args);
    };
    const { done } = await repaint(book, { pageIndex: 1 }, sessionId);
    await done;
    expect((await book.repositories.requireSession(sessionId)).status).toBe(GenerationStatus.CANCELLED);
    expect(await pictures(book)).toEqual(before);
    expect(await book.repositories.findDraftImages(sessionId)).toEqual([]);
    expect(new Set(book.media.files.keys())).toEqual(files);
  });

  it('warns, with its own code, when the page text was edited while its scene was being described again from the earlier text', async () => {
    const book = await finishedBook();
    const storyId = (await book.story()).id;
    const describe = book.text.describe.bind(book.text);
    // The owner saves new text for the page while the model still describes the old one.
    book.text.describe = async (subject) => {
      await book.repositories.replacePageText(storyId, 1, 'The fox now sails a boat.');
      return describe(subject);
    };
    const { sessionId, done } = await repaint(book, { pageIndex: 1, redescribe: true });
    await done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warningDetails).toEqual([
      { code: WARNING.describedFromEarlierText.code, message: expect.stringMatching(/^Page 2's text was changed while/), pageIndex: 1 },
    ]);
    expect((await book.repositories.findPages(storyId))[1]).toMatchObject({
      text: 'The fox now sails a boat.',
      sceneDescription: 'scene 0 a windy hill at noon',
    });
  });

  it('gives no such warning when the text was edited before the repaint described it', async () => {
    const book = await finishedBook();
    const storyId = (await book.story()).id;
    await book.repositories.replacePageText(storyId, 1, 'The fox now sails a boat.');
    const { sessionId, done } = await repaint(book, { pageIndex: 1, redescribe: true });
    await done;
    expect(await book.repositories.requireSession(sessionId)).toMatchObject({ status: GenerationStatus.COMPLETED, warningDetails: [] });
  });

  it('warns when the text was edited between a crashed run that described the scene and the run that resumes it', async () => {
    const book = await finishedBook({ harmonize: 0.3 });
    const storyId = (await book.story()).id;
    const painter = book.painter as HarmonizingPainter;
    const harmonize = painter.imageToImage.bind(painter);
    const sessionId = randomUUID();
    let controller: AbortController | null = null;
    painter.imageToImage = async () => {
      controller!.abort(new Error('worker killed'));
      throw new Error('aborted');
    };
    const first = await repaint(book, { pageIndex: 1, redescribe: true }, sessionId);
    controller = first.controller;
    await first.done;
    await book.repositories.replacePageText(storyId, 1, 'The fox now sails a boat.');
    painter.imageToImage = harmonize;
    const second = await repaint(book, { pageIndex: 1, redescribe: true }, sessionId);
    await second.done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warningDetails.map((warning) => warning.code)).toEqual([WARNING.describedFromEarlierText.code]);
  });

  it('paints the scene alone, with a warning, in a book whose character picture failed', async () => {
    const book = await setup({ pageCount: 2, batching: false });
    book.painter.failOn.push(/red fox/);
    await book.run();
    book.painter.failOn.length = 0;
    const before = await pictures(book);
    expect(Object.keys(before).sort()).toEqual(['BACKGROUND:0', 'BACKGROUND:1']);
    const { sessionId, done } = await repaint(book, { pageIndex: 0 });
    await done;
    const session = await book.repositories.requireSession(sessionId);
    expect(session.status).toBe(GenerationStatus.COMPLETED);
    expect(session.warnings).toEqual([expect.stringMatching(/^The book has no character picture, so page 1 shows its new scene without the character/)]);
    const after = await pictures(book);
    expect(Object.keys(after).sort()).toEqual(['BACKGROUND:0', 'BACKGROUND:1']);
    expect(after['BACKGROUND:0'].id).not.toBe(before['BACKGROUND:0'].id);
  });
});

describe('GenerationService reporting metrics', () => {
  it('counts a generation started when it is queued and cancelled when its owner cancels it', async () => {
    const metrics = new InMemoryGenerationMetrics();
    const logger = pino({ level: 'silent' });
    const generations = new GenerationService(
      new InMemoryRepositories(),
      new MemoryMedia(),
      new InProcessJobQueue({ attempts: 1, backoffMs: 0 }, logger),
      new InProcessProgressBus(),
      logger,
      metrics,
    );
    const session = await generations.start({ prompt: 'a fox who counts stars' }, SINGLE_USER);
    expect(metrics.started).toBe(1);
    expect(metrics.ended).toEqual([]);
    await generations.cancel(session.id, SINGLE_USER);
    await generations.cancel(session.id, SINGLE_USER);
    expect(metrics.ended).toEqual([GenerationStatus.CANCELLED]);
  });
});

/** Downloads a test starts and ends by hand. */
class GatedDownloads implements ModelDownloadWaits {
  private readonly running = new Map<SetupComponent, { ended: Promise<DownloadOutcome>; end(outcome: DownloadOutcome): void }>();

  start(component: SetupComponent): void {
    let end!: (outcome: DownloadOutcome) => void;
    const ended = new Promise<DownloadOutcome>((resolve) => {
      end = resolve;
    });
    this.running.set(component, { ended, end });
  }

  finish(component: SetupComponent, outcome: DownloadOutcome): void {
    const download = this.running.get(component);
    this.running.delete(component);
    download?.end(outcome);
  }

  async isDownloading(component: SetupComponent): Promise<boolean> {
    return this.running.has(component);
  }

  async whenDownloaded(component: SetupComponent): Promise<DownloadOutcome | null> {
    return (await this.running.get(component)?.ended) ?? null;
  }
}

/** Resolves once the bus has published an update with this stage. */
function stageShown(bus: RecordingBus, stage: { code: GenerationStage }): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (bus.updates.some((update) => update.stageCode === stage.code) ? resolve() : setTimeout(check, 1));
    check();
  });
}

describe('GenerationPipeline and a model being downloaded', () => {
  it('waits for the story model, saying so in its stage, then plans and writes', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.STORY_MODEL);
    const book = await setup({ pageCount: 2, downloads });
    const running = book.run();
    await stageShown(book.bus, STAGE.waitingForStoryModel);
    expect(book.text.plans).toBe(0);
    downloads.finish(SetupComponent.STORY_MODEL, { ok: true });
    await running;
    expect((await book.session()).status).toBe(GenerationStatus.COMPLETED);
    const stages = book.bus.updates.map((update) => update.stageCode);
    expect(stages.indexOf(STAGE.waitingForStoryModel.code)).toBeLessThan(stages.indexOf(STAGE.planning.code));
  });

  it('does not wait for a story model download when its backend had its model as the run started (the embedded model while Ollama pulls)', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.STORY_MODEL);
    const book = await setup({ pageCount: 1, downloads, textModelPresent: true });
    await book.run();
    expect((await book.session()).status).toBe(GenerationStatus.COMPLETED);
    expect(book.bus.updates.map((update) => update.stageCode)).not.toContain(STAGE.waitingForStoryModel.code);
    expect(await downloads.isDownloading(SetupComponent.STORY_MODEL)).toBe(true);
  });

  it('waits for a story model download when its backend lacked its model as the run started (Ollama to pull into)', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.STORY_MODEL);
    const book = await setup({ pageCount: 1, downloads, textModelPresent: false });
    const running = book.run();
    await stageShown(book.bus, STAGE.waitingForStoryModel);
    expect(book.text.plans).toBe(0);
    downloads.finish(SetupComponent.STORY_MODEL, { ok: true });
    await running;
    expect((await book.session()).status).toBe(GenerationStatus.COMPLETED);
  });

  it('fails with the download’s message when the story model download fails', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.STORY_MODEL);
    const book = await setup({ downloads });
    const running = book.run();
    await stageShown(book.bus, STAGE.waitingForStoryModel);
    downloads.finish(SetupComponent.STORY_MODEL, { ok: false, message: 'The story model download failed: disk full' });
    await running;
    expect(await book.session()).toMatchObject({ status: GenerationStatus.FAILED, errorMessage: 'The story model download failed: disk full' });
    expect(book.text.plans).toBe(0);
  });

  it('writes the pages while the picture model downloads, then waits for it and paints with it', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.PICTURE_MODEL);
    let pictureModelThere = false;
    const book = await setup({ pageCount: 2, downloads, paintingFrom: () => pictureModelThere });
    const running = book.run();
    await stageShown(book.bus, STAGE.waitingForPictureModel);
    expect(book.text.written).toEqual([0, 1]);
    expect(book.painter.calls).toHaveLength(0);
    pictureModelThere = true;
    downloads.finish(SetupComponent.PICTURE_MODEL, { ok: true });
    await running;
    expect(await book.session()).toMatchObject({ status: GenerationStatus.COMPLETED, warnings: [] });
    expect(await book.imageKeys()).toEqual(allKeys(2));
    const stages = book.bus.updates.map((update) => update.stageCode);
    expect(stages.lastIndexOf(STAGE.waitingForPictureModel.code)).toBeLessThan(stages.lastIndexOf(STAGE.painting.code));
  });

  it('keeps the text and warns with the download’s message when the picture model download fails', async () => {
    const downloads = new GatedDownloads();
    downloads.start(SetupComponent.PICTURE_MODEL);
    const book = await setup({ pageCount: 1, downloads, paintingFrom: () => false });
    const running = book.run();
    await stageShown(book.bus, STAGE.waitingForPictureModel);
    downloads.finish(SetupComponent.PICTURE_MODEL, { ok: false, message: 'The picture model download failed: unet/model.onnx failed its checksum' });
    await running;
    expect(await book.session()).toMatchObject({
      status: GenerationStatus.COMPLETED,
      warnings: ['Images were not generated: The picture model download failed: unet/model.onnx failed its checksum'],
    });
  });
});
