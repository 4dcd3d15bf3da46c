import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GenerationSession } from '../../src/entities/index.js';
import { GenerationKind, GenerationStatus } from '../../src/entities/enums.js';
import type { SessionPatch, StoryRepository } from '../../src/ports/story-repository.js';
import { SessionNoLongerRunning } from '../../src/services/errors.js';
import { GenerationReporter } from '../../src/services/progress/generation-reporter.js';
import { InProcessProgressBus } from '../../src/adapters/progress/in-process-progress-bus.js';
import type { ProgressEvent } from '../../src/ports/progress-bus.js';
import { retryingStage, STAGE } from '../../src/services/progress/progress-plan.js';
import { WARNING, type GenerationWarning } from '../../src/services/generation/warnings.js';

const SESSION_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

/** Lets every pending promise callback run; fake timers do not move. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

/** The only repository method the reporter uses; records every call. */
class FakeRepository {
  readonly calls: { id: string; patch: SessionPatch }[] = [];
  answer = true;

  async updateRunningSession(id: string, patch: SessionPatch): Promise<boolean> {
    this.calls.push({ id, patch });
    return this.answer;
  }
}

async function setup(start: Partial<GenerationSession> = {}) {
  const session = {
    id: SESSION_ID,
    status: GenerationStatus.PENDING,
    progressPercentage: 0,
    stage: STAGE.queued.label,
    stageCode: STAGE.queued.code,
    warnings: [] as string[],
    warningDetails: [] as GenerationWarning[],
    storyId: null,
    options: { kind: GenerationKind.BOOK, style: null, seed: null },
    ...start,
  } as GenerationSession;
  const repository = new FakeRepository();
  const bus = new InProcessProgressBus();
  const controller = new AbortController();
  const events: ProgressEvent[] = [];
  const subscription = await bus.subscribe(SESSION_ID);
  void (async () => {
    for await (const event of subscription) events.push(event);
  })();
  const reporter = new GenerationReporter(session, repository as unknown as StoryRepository, bus, controller.signal, pino({ level: 'silent' }));
  return { reporter, repository, bus, controller, events };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('GenerationReporter', () => {
  describe('storyText', () => {
    it('folds text that arrives while a slow bus is still sending into the next event, instead of an event per chunk', async () => {
      const { reporter, bus, events } = await setup();
      const publish = bus.publish.bind(bus);
      // Each publish takes 100 ms, as a Redis round trip under load might.
      bus.publish = async (update) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return publish(update);
      };
      reporter.storyText('One ', 11);
      await vi.advanceTimersByTimeAsync(20); // first flush: its publish is now in flight
      for (const chunk of ['two ', 'three ', 'four ']) {
        reporter.storyText(chunk, 12);
        await vi.advanceTimersByTimeAsync(20);
      }
      await vi.advanceTimersByTimeAsync(400);
      await settle();
      expect(events.map((event) => event.storyTextDelta)).toEqual(['One ', 'two three four ']);
    });

    it('sends deltas arriving within 16 ms as one event carrying their concatenation', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('Once ', 11);
      await vi.advanceTimersByTimeAsync(5);
      reporter.storyText('upon ', 12);
      await vi.advanceTimersByTimeAsync(5);
      reporter.storyText('a time', 13);
      await settle();
      expect(events).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(7);
      await settle();
      expect(events).toHaveLength(1);
      expect(events[0].storyTextDelta).toBe('Once upon a time');
      expect(events[0].progressPercentage).toBe(13);
    });

    it('sends deltas spaced more than 16 ms apart as separate events, in order', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('Once ', 11);
      await vi.advanceTimersByTimeAsync(20);
      reporter.storyText('upon ', 12);
      await vi.advanceTimersByTimeAsync(20);
      reporter.storyText('a time', 13);
      await vi.advanceTimersByTimeAsync(20);
      await settle();
      expect(events.map((event) => event.storyTextDelta)).toEqual(['Once ', 'upon ', 'a time']);
      expect(events.map((event) => event.seq)).toEqual([1, 2, 3]);
    });

    it('never writes to the repository, however many deltas arrive', async () => {
      const { reporter, repository, events } = await setup();
      for (let i = 0; i < 100; i++) {
        reporter.storyText(`w${i} `, 10 + Math.floor(i / 10));
        await vi.advanceTimersByTimeAsync(5);
      }
      await vi.advanceTimersByTimeAsync(50);
      await settle();
      expect(repository.calls).toEqual([]);
      expect(events.length).toBeGreaterThan(1);
      expect(events.map((event) => event.storyTextDelta).join('')).toBe(Array.from({ length: 100 }, (_, i) => `w${i} `).join(''));
    });

    it('flushText() sends pending text at once, without waiting for the window', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('abc', 11);
      await reporter.flushText();
      await settle();
      expect(events.map((event) => event.storyTextDelta)).toEqual(['abc']);
      await vi.advanceTimersByTimeAsync(50);
      await settle();
      expect(events).toHaveLength(1);
    });

    it('discard() drops pending text so it never goes out', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('abandoned', 11);
      reporter.discard();
      await vi.advanceTimersByTimeAsync(50);
      await settle();
      expect(events).toEqual([]);
    });
  });

  describe('enter', () => {
    it('writes the session row and publishes the new stage', async () => {
      const { reporter, repository, events } = await setup();
      await reporter.enter(GenerationStatus.GENERATING_STORY, STAGE.writingStory, 10);
      await settle();
      expect(repository.calls).toEqual([
        {
          id: SESSION_ID,
          patch: { status: GenerationStatus.GENERATING_STORY, stage: 'Writing the story', stageCode: 'WRITING_STORY', progressPercentage: 10 },
        },
      ]);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        sessionId: SESSION_ID,
        status: GenerationStatus.GENERATING_STORY,
        stage: 'Writing the story',
        stageCode: 'WRITING_STORY',
        progressPercentage: 10,
        storyTextDelta: null,
      });
    });

    it('sends pending story text before the new stage', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('the end.', 28);
      await reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, 30);
      await settle();
      expect(events.map((event) => [event.storyTextDelta, event.status])).toEqual([
        ['the end.', GenerationStatus.PENDING],
        [null, GenerationStatus.GENERATING_IMAGES],
      ]);
    });
  });

  describe('progress', () => {
    it('never goes backwards, whether asked by progress(), storyText() or enter()', async () => {
      const { reporter, repository, events } = await setup();
      reporter.progress(50);
      await settle();
      expect(events.map((event) => event.progressPercentage)).toEqual([50]);

      reporter.progress(40);
      await settle();
      expect(events).toHaveLength(1);
      expect(reporter.currentPercent).toBe(50);

      reporter.storyText('x', 12);
      await vi.advanceTimersByTimeAsync(20);
      await reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, 30);
      await settle();
      expect(repository.calls.at(-1)!.patch.progressPercentage).toBe(50);
      expect(events.map((event) => event.progressPercentage)).toEqual([50, 50, 50]);
      expect(reporter.currentPercent).toBe(50);
    });

    it('publishes only when the percentage actually moves, and never writes it to the repository', async () => {
      const { reporter, repository, events } = await setup({ progressPercentage: 30 });
      reporter.progress(30);
      reporter.progress(31);
      reporter.progress(31);
      reporter.progress(45);
      await settle();
      expect(events.map((event) => event.progressPercentage)).toEqual([31, 45]);
      expect(repository.calls).toEqual([]);
    });
  });

  describe('storySaved and warn', () => {
    it('storySaved() records the story id in the row, and in events once the story has text, keeping the percentage', async () => {
      const storyId = '11111111-2222-4333-8444-555555555555';
      const { reporter, repository, events } = await setup({ progressPercentage: 25 });
      await reporter.storySaved(storyId, '');
      await settle();
      expect(repository.calls).toEqual([{ id: SESSION_ID, patch: { storyId, progressPercentage: 25 } }]);
      expect(events[0]).toMatchObject({ storyId: null, progressPercentage: 25, pageIndex: null });
      await reporter.pageSaved(0, 'Once.');
      await settle();
      expect(events.at(-1)).toMatchObject({ storyId, pageIndex: 0 });
    });

    it('storySaved() with showBeforeText (a book of several pages) sends the story id at once', async () => {
      const storyId = '11111111-2222-4333-8444-555555555555';
      const { reporter, events } = await setup();
      await reporter.storySaved(storyId, '', { showBeforeText: true });
      await settle();
      expect(events[0]).toMatchObject({ storyId });
    });

    it("pageSaved() names the page, and sends the story's saved text as a reset when it differs from what was streamed", async () => {
      const { reporter, events } = await setup();
      reporter.storyText('Page one.', 20, 0);
      reporter.storyText('\n\nPage two, cut off ha', 22, 1);
      await reporter.pageSaved(1, 'Page one.\n\nPage two.');
      await settle();
      expect(events.map((event) => [event.storyTextDelta, event.storyTextReset, event.pageIndex])).toEqual([
        ['Page one.', false, 0],
        ['\n\nPage two, cut off ha', false, 1],
        ['Page one.\n\nPage two.', true, 1],
        [null, false, 1],
      ]);
    });

    it('storySaved() sends the saved text, flagged as a reset, when it differs from what was streamed', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('One sentence. And a cut-off ha', 20);
      await reporter.flushText();
      await reporter.storySaved('11111111-2222-4333-8444-555555555555', 'One sentence.');
      await settle();
      expect(events.map((event) => [event.storyTextDelta, event.storyTextReset])).toEqual([
        ['One sentence. And a cut-off ha', false],
        ['One sentence.', true],
        [null, false],
      ]);
    });

    it('storySaved() sends no text when the saved story is what was streamed', async () => {
      const { reporter, events } = await setup();
      reporter.storyText('Once upon a time.\n', 20);
      await reporter.flushText();
      await reporter.storySaved('11111111-2222-4333-8444-555555555555', 'Once upon a time.');
      await settle();
      expect(events.filter((event) => event.storyTextDelta !== null)).toHaveLength(1);
    });

    it('ends the run (SessionNoLongerRunning) when the row says the session was ended elsewhere', async () => {
      const { reporter, repository } = await setup();
      repository.answer = false;
      await expect(reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, 30)).rejects.toBeInstanceOf(SessionNoLongerRunning);
    });

    it('cuts a stage longer than the column holds', async () => {
      const { reporter, repository } = await setup();
      await reporter.note(retryingStage(2, 3, 'x'.repeat(300)));
      const stage = repository.calls.at(-1)!.patch.stage!;
      expect(stage).toHaveLength(200);
      expect(stage.endsWith('…')).toBe(true);
    });

    it('warn() saves and publishes every warning so far', async () => {
      const first = { code: WARNING.unclassified.code, message: 'first', pageIndex: null };
      const { reporter, repository, events } = await setup({ warnings: ['first'], warningDetails: [first] });
      await reporter.warn(WARNING.sceneNotPainted.code, 'second', 2);
      await settle();
      const second = { code: 'SCENE_NOT_PAINTED', message: 'second', pageIndex: 2 };
      expect(repository.calls).toEqual([{ id: SESSION_ID, patch: { warnings: ['first', 'second'], warningDetails: [first, second] } }]);
      expect(events[0].warnings).toEqual(['first', 'second']);
      expect(events[0].warningDetails).toEqual([first, second]);
    });
  });

  describe('complete and fail', () => {
    it('complete() sets 100 % and COMPLETED in the row and in the event', async () => {
      const { reporter, repository, bus, events } = await setup({ status: GenerationStatus.GENERATING_IMAGES, progressPercentage: 87 });
      await reporter.complete();
      await settle();
      expect(repository.calls).toEqual([
        {
          id: SESSION_ID,
          patch: {
            status: GenerationStatus.COMPLETED,
            stage: STAGE.completed.label,
            stageCode: 'COMPLETED',
            progressPercentage: 100,
            errorMessage: null,
            warnings: [],
            warningDetails: [],
          },
        },
      ]);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ status: GenerationStatus.COMPLETED, progressPercentage: 100, stage: 'Completed', stageCode: 'COMPLETED' });
      expect(await bus.snapshot(SESSION_ID)).toBeNull();
    });

    it('fail() sets FAILED with the message and keeps the percentage', async () => {
      const { reporter, repository, events } = await setup({ status: GenerationStatus.GENERATING_STORY, progressPercentage: 17 });
      await reporter.fail('Ollama is not running');
      await settle();
      expect(repository.calls[0].patch).toMatchObject({
        status: GenerationStatus.FAILED,
        stage: STAGE.failed.label,
        stageCode: 'FAILED',
        progressPercentage: 17,
        errorMessage: 'Ollama is not running',
      });
      expect(events[0]).toMatchObject({ status: GenerationStatus.FAILED, errorMessage: 'Ollama is not running', progressPercentage: 17 });
    });

    it('does not publish the terminal event when the row was no longer running (cancelled meanwhile)', async () => {
      const { reporter, repository, events } = await setup({ status: GenerationStatus.GENERATING_IMAGES, progressPercentage: 60 });
      reporter.progress(61);
      await settle();
      expect(events).toHaveLength(1);
      repository.answer = false;
      await reporter.complete();
      await settle();
      expect(repository.calls).toHaveLength(1);
      expect(events.map((event) => event.status)).toEqual([GenerationStatus.GENERATING_IMAGES]);
    });
  });

  describe('after the signal is aborted', () => {
    it('publishes nothing more, whatever it is asked to report', async () => {
      const { reporter, controller, events } = await setup();
      await reporter.enter(GenerationStatus.GENERATING_STORY, STAGE.writingStory, 10);
      await settle();
      expect(events).toHaveLength(1);

      controller.abort();
      reporter.storyText('late text', 20);
      await vi.advanceTimersByTimeAsync(50);
      reporter.progress(25);
      await reporter.enter(GenerationStatus.GENERATING_IMAGES, STAGE.painting, 30);
      await reporter.storySaved('11111111-2222-4333-8444-555555555555', 'late text');
      await reporter.warn(WARNING.unclassified.code, 'late warning');
      await reporter.complete();
      await reporter.fail('late failure');
      await settle();
      expect(events).toHaveLength(1);
    });

    it('drops story text that was still waiting in the coalescing window', async () => {
      const { reporter, controller, events } = await setup();
      reporter.storyText('pending', 11);
      controller.abort();
      await vi.advanceTimersByTimeAsync(50);
      await settle();
      expect(events).toEqual([]);
    });
  });
});
