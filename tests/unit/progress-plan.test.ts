import { describe, expect, it } from 'vitest';
import { GenerationStatus } from '../../src/entities/enums.js';
import {
  BOOK_WEIGHTS,
  BookProgress,
  GenerationStage,
  nextPercent,
  pageWritingFraction,
  PERCENT,
  retryingStage,
  STAGE,
  terminalStage,
  writingStage,
  type BookPart,
} from '../../src/services/progress/progress-plan.js';

/** Every part of a book of `pageCount` pages, with pictures. */
function partsOf(pageCount: number): BookPart[] {
  const parts: BookPart[] = [{ kind: 'plan' }, { kind: 'picture', page: null }];
  for (let index = 0; index < pageCount; index++) {
    parts.push({ kind: 'page', index }, { kind: 'picture', page: index }, { kind: 'composite', index });
  }
  return parts;
}

/** A deterministic shuffle (Lehmer generator), so the orders tried are the same on every run. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 48271) % 2147483647;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('pageWritingFraction', () => {
  it('grows with the text written, stays below 1 until the page is saved, and treats nonsense lengths as bounds', () => {
    const fractions = [0, 50, 200, 499, 500, 10_000].map(pageWritingFraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(pageWritingFraction(-5)).toBe(0);
    expect(pageWritingFraction(10_000)).toBeLessThan(1);
  });
});

describe('BookProgress', () => {
  it('starts at 5 and reaches exactly 99 when every part of a book is done, in any order, for 1 to 12 pages', () => {
    for (const pageCount of [1, 4, 12]) {
      for (const seed of [1, 2, 3]) {
        const progress = BookProgress.ofBook(pageCount, true);
        expect(progress.percent()).toBe(PERCENT.started);
        let last = progress.percent();
        for (const part of shuffled(partsOf(pageCount), seed)) {
          progress.set(part, 1);
          expect(progress.percent()).toBeGreaterThanOrEqual(last);
          last = progress.percent();
        }
        expect(last).toBe(PERCENT.lastBeforeDone);
      }
    }
  });

  it('weights from the plan size: a 4-page book with its plan and text written is (1 + 4) / (1 + 4 + 5 + 0.8) of the span', () => {
    const progress = BookProgress.ofBook(4, true);
    progress.set({ kind: 'plan' }, 1);
    for (let index = 0; index < 4; index++) progress.set({ kind: 'page', index }, 1);
    const units = BOOK_WEIGHTS.plan + 4 * BOOK_WEIGHTS.page;
    const total = units + 5 * BOOK_WEIGHTS.picture + 4 * BOOK_WEIGHTS.composite;
    expect(progress.percent()).toBe(PERCENT.started + Math.floor((units / total) * (PERCENT.lastBeforeDone - PERCENT.started)));
  });

  it('counts only the plan and the text when there are no pictures to make', () => {
    const progress = BookProgress.ofBook(2, false);
    for (const part of [{ kind: 'plan' }, { kind: 'page', index: 0 }, { kind: 'page', index: 1 }] as BookPart[]) progress.set(part, 1);
    expect(progress.percent()).toBe(PERCENT.lastBeforeDone);
  });

  it("ignores a part's fraction going down or NaN, and clamps fractions to 0..1", () => {
    const progress = BookProgress.ofBook(2, true);
    progress.set({ kind: 'picture', page: 0 }, 0.5);
    const half = progress.percent();
    progress.set({ kind: 'picture', page: 0 }, 0.1);
    progress.set({ kind: 'picture', page: 0 }, Number.NaN);
    expect(progress.percent()).toBe(half);
    const overshoot = BookProgress.ofBook(2, true);
    overshoot.set({ kind: 'picture', page: 0 }, 5);
    const exact = BookProgress.ofBook(2, true);
    exact.set({ kind: 'picture', page: 0 }, 1);
    expect(overshoot.percent()).toBe(exact.percent());
    const negative = BookProgress.ofBook(2, true);
    negative.set({ kind: 'plan' }, -3);
    expect(negative.percent()).toBe(PERCENT.started);
  });
});

describe('writingStage', () => {
  it("names the page for a book and keeps the one-page design's stage name", () => {
    expect(writingStage(1, 6)).toEqual({ code: 'WRITING_PAGE', label: 'Writing page 2 of 6' });
    expect(writingStage(0, 1)).toEqual({ code: 'WRITING_STORY', label: 'Writing the story' });
  });
});

describe('nextPercent', () => {
  it('moves forward to a higher proposal, rounded', () => {
    expect(nextPercent(10, 20)).toBe(20);
    expect(nextPercent(10, 20.6)).toBe(21);
  });

  it('never decreases', () => {
    expect(nextPercent(50, 40)).toBe(50);
    expect(nextPercent(50, -10)).toBe(50);
    let current = 0;
    for (const proposed of [5, 3, 30, 29, 31, 0, 90, 89.4, 100]) {
      const next = nextPercent(current, proposed);
      expect(next).toBeGreaterThanOrEqual(current);
      current = next;
    }
    expect(current).toBe(100);
  });

  it('caps at 100', () => {
    expect(nextPercent(90, 150)).toBe(100);
    expect(nextPercent(100, 101)).toBe(100);
  });
});

describe('terminalStage', () => {
  it('names the stage after the terminal status', () => {
    expect(terminalStage(GenerationStatus.COMPLETED)).toBe(STAGE.completed);
    expect(terminalStage(GenerationStatus.CANCELLED)).toBe(STAGE.cancelled);
    expect(terminalStage(GenerationStatus.FAILED)).toBe(STAGE.failed);
  });

  it('reads "Completed", "Cancelled" and "Failed"', () => {
    expect([STAGE.completed, STAGE.cancelled, STAGE.failed].map((stage) => stage.label)).toEqual(['Completed', 'Cancelled', 'Failed']);
  });
});

describe('the stage table', () => {
  it('gives every stage a code of its own, and the enum holds exactly those codes', () => {
    const codes = Object.values(STAGE).map((stage) => stage.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(Object.keys(GenerationStage).sort()).toEqual([...codes].sort());
    expect(Object.entries(GenerationStage).every(([key, value]) => key === value)).toBe(true);
    for (const code of codes) expect(code).toMatch(/^[A-Z][A-Z_]*$/);
  });

  it('gives a retry its own code, whatever the reason in its label', () => {
    const stage = retryingStage(2, 3, 'Ollama is busy');
    expect(stage).toEqual({ code: 'RETRYING', label: 'Retrying (attempt 2 of 3): Ollama is busy' });
  });
});

describe('progress arithmetic given a NaN', () => {
  it('keeps the current percentage instead of turning into NaN', () => {
    expect(nextPercent(42, Number.NaN)).toBe(42);
  });
});
