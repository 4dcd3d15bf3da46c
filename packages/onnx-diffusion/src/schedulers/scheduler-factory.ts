import { DdimScheduler } from './ddim.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral-discrete.js';
import { EulerDiscreteScheduler } from './euler-discrete.js';
import { LcmScheduler } from './lcm.js';
import { PndmScheduler } from './pndm.js';
import type { Scheduler, SchedulerConfigInput, SchedulerKind } from './scheduler.js';
import { commonSettings, type Spacing } from './scheduling-utils.js';

/** diffusers' class names (scheduler_config.json `_class_name`) of the schedulers implemented here. */
const CLASS_KINDS: Record<string, SchedulerKind> = {
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  LCMScheduler: 'lcm',
};

/** The kind a scheduler_config.json names, or null when it names one not implemented here. */
export function schedulerKindOf(config: SchedulerConfigInput): SchedulerKind | null {
  return CLASS_KINDS[config._class_name ?? ''] ?? null;
}

/**
 * The scheduler scheduler_config.json asks for, set to `steps` inference steps
 * (diffusers' from_config + set_timesteps). An unknown class falls back to Euler
 * on the same noise schedule, with a note. Throws when `steps` is not a positive
 * integer, or more than an LCM model was distilled for.
 */
export function createScheduler(config: SchedulerConfigInput, steps: number): Scheduler {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`the number of inference steps must be a positive integer (got ${steps})`);
  const notes: string[] = [];
  let kind = schedulerKindOf(config);
  if (!kind) {
    notes.push(`${config._class_name ?? 'an unnamed scheduler'} is not implemented; using Euler with the same noise schedule`);
    kind = 'euler';
  }
  const defaultSpacing: Spacing = kind === 'euler' || kind === 'euler-ancestral' ? 'linspace' : 'leading';
  const common = commonSettings(config, defaultSpacing, notes);
  switch (kind) {
    case 'euler':
      return new EulerDiscreteScheduler(common, steps, config);
    case 'euler-ancestral':
      return new EulerAncestralDiscreteScheduler(common, steps, config);
    case 'ddim':
      return new DdimScheduler(common, steps, config);
    case 'pndm':
      return new PndmScheduler(common, steps, config);
    case 'lcm':
      return new LcmScheduler(common, steps, config);
  }
}
