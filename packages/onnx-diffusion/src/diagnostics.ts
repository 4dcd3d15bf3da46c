import diagnosticsChannel from 'node:diagnostics_channel';
import type { DiffusionTimings } from './diffusion.js';
import type { ModelInfo } from './worker-protocol.js';

/**
 * What the library reports for instrumentation (benches, tests, tracing), on
 * node:diagnostics_channel. Publishing to a channel nobody subscribes to costs
 * nothing, and nothing in the library depends on who listens.
 *
 *   import { subscribe } from 'node:diagnostics_channel';
 *   subscribe(DIAGNOSTICS_CHANNELS.job, (message) => console.log(message as DiffusionJobReport));
 */
export const DIAGNOSTICS_CHANNELS = {
  /** A model finished loading in a worker thread: DiffusionLoadedEvent. */
  loaded: 'onnx-diffusion:loaded',
  /** A denoising step finished: DiffusionStepEvent. */
  step: 'onnx-diffusion:step',
  /** A generation ended (completed, cancelled or failed): DiffusionJobReport. */
  job: 'onnx-diffusion:job',
} as const;

export interface DiffusionLoadedEvent {
  /** Absolute model folder. */
  modelDir: string;
  info: ModelInfo;
}

export interface DiffusionStepEvent {
  modelDir: string;
  /** Steps done so far (1-based) and in all. */
  done: number;
  total: number;
}

export const JobOutcome = {
  Completed: 'completed',
  Cancelled: 'cancelled',
  Failed: 'failed',
} as const;
export type JobOutcome = (typeof JobOutcome)[keyof typeof JobOutcome];

/** What a finished generation measured. */
export interface DiffusionJobReport {
  modelDir: string;
  outcome: JobOutcome;
  stepsDone: number;
  totalSteps: number;
  /** Completed jobs: where the time went, and the steps and guidance scale actually used. */
  timings?: DiffusionTimings;
  steps?: number;
  guidanceScale?: number;
  /** Wall-clock ms (performance.timeOrigin + now) of each denoising step, as the worker saw them. */
  stepWindows: [number, number][];
  /** Cancelled jobs: wall-clock ms when the cancel flag was set, and when the worker stopped on it. */
  cancelRequestedAt?: number;
  stoppedAt?: number;
}

const loadedChannel = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.loaded);
const stepChannel = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.step);
const jobChannel = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.job);

export const publishLoaded = (event: DiffusionLoadedEvent) => loadedChannel.publish(event);
export const publishStep = (event: DiffusionStepEvent) => stepChannel.publish(event);
export const publishJob = (report: DiffusionJobReport) => jobChannel.publish(report);
