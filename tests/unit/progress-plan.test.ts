import { describe, expect, it } from 'vitest';
import { GenerationStatus } from '../../src/entities/enums.js';
import {
  IMAGE_STAGE_WEIGHTS,
  ImageStageMeter,
  nextPercent,
  PERCENT,
  STAGE,
  storyWritingPercent,
  terminalStage,
  type ImageStagePart,
} from '../../src/services/progress/progress-plan.js';

const PARTS = Object.keys(IMAGE_STAGE_WEIGHTS) as ImageStagePart[];

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('storyWritingPercent', () => {
  it('starts at 10 with no text written', () => {
    expect(storyWritingPercent(0)).toBe(10);
  });

  it('stays within 10..29 for any length, including negative and huge ones', () => {
    for (const chars of [-100, 0, 1, 500, 2399, 2400, 2401, 10_000, 1e9]) {
      const percent = storyWritingPercent(chars);
      expect(percent).toBeGreaterThanOrEqual(10);
      expect(percent).toBeLessThanOrEqual(29);
      expect(Number.isInteger(percent)).toBe(true);
    }
    expect(storyWritingPercent(1e9)).toBe(29);
  });

  it('never decreases as the number of characters grows', () => {
    let previous = storyWritingPercent(0);
    for (let chars = 1; chars <= 5000; chars += 7) {
      const percent = storyWritingPercent(chars);
      expect(percent).toBeGreaterThanOrEqual(previous);
      previous = percent;
    }
    expect(previous).toBe(29);
  });

  it('stays below the 30 reached once the story is saved', () => {
    expect(storyWritingPercent(1e9)).toBeLessThan(PERCENT.storySaved);
  });
});

describe('ImageStageMeter', () => {
  it('starts at 30 before any part has moved', () => {
    expect(new ImageStageMeter().percent()).toBe(30);
  });

  it('reaches exactly 90 when every part is done, in every completion order', () => {
    for (const order of permutations(PARTS)) {
      const meter = new ImageStageMeter();
      for (const part of order) meter.set(part, 1);
      expect(meter.percent(), order.join(',')).toBe(90);
    }
  });

  it('is monotonic whatever order the parts progress in', () => {
    const steps = [0.1, 0.33, 0.5, 0.77, 1];
    for (const order of permutations(PARTS)) {
      const meter = new ImageStageMeter();
      let previous = meter.percent();
      // Interleave: every part advances one step per round, in this order.
      for (const step of steps) {
        for (const part of order) {
          meter.set(part, step);
          const percent = meter.percent();
          expect(percent).toBeGreaterThanOrEqual(previous);
          expect(percent).toBeLessThanOrEqual(90);
          previous = percent;
        }
      }
      expect(previous).toBe(90);
    }
  });

  it('weights the parts: both pictures painted without descriptions or composite is 75 % of the span', () => {
    const meter = new ImageStageMeter();
    meter.set('characterImage', 1);
    meter.set('backgroundImage', 1);
    expect(meter.percent()).toBe(30 + Math.floor(0.75 * 60));
  });

  it("ignores a part's fraction going down", () => {
    const meter = new ImageStageMeter();
    meter.set('characterImage', 0.8);
    const before = meter.percent();
    expect(before).toBeGreaterThan(30);
    meter.set('characterImage', 0.2);
    expect(meter.percent()).toBe(before);
    meter.set('characterImage', 0);
    expect(meter.percent()).toBe(before);
  });

  it('clamps fractions above 1 to 1 and below 0 to 0', () => {
    const overshoot = new ImageStageMeter();
    overshoot.set('characterImage', 5);
    const exact = new ImageStageMeter();
    exact.set('characterImage', 1);
    expect(overshoot.percent()).toBe(exact.percent());

    const negative = new ImageStageMeter();
    negative.set('backgroundImage', -3);
    expect(negative.percent()).toBe(30);

    const all = new ImageStageMeter();
    for (const part of PARTS) all.set(part, 10);
    expect(all.percent()).toBe(90);
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
    expect([STAGE.completed, STAGE.cancelled, STAGE.failed]).toEqual(['Completed', 'Cancelled', 'Failed']);
  });
});

describe('progress arithmetic given a NaN', () => {
  it('keeps the current percentage instead of turning into NaN', () => {
    expect(nextPercent(42, Number.NaN)).toBe(42);
    const meter = new ImageStageMeter();
    meter.set('characterImage', 0.5);
    meter.set('characterImage', Number.NaN);
    expect(meter.percent()).toBe(30 + Math.floor(0.375 * 0.5 * 60));
  });
});
