import type { DiffusionRequest, DiffusionTimings } from './diffusion.js';
import type { ModelDefaults } from './model-loader.js';

/** Messages between DiffusionWorker (diffusion-worker.ts, main thread) and worker-thread.ts. */

interface LoadMessage {
  type: 'load';
  modelDir: string;
  providers: string[];
}

export interface GenerateMessage {
  type: 'generate';
  id: number;
  requests: DiffusionRequest[];
  /** Unset: the model's default. */
  steps?: number;
  guidanceScale?: number;
  /** Int32Array(1) over a SharedArrayBuffer: the main thread stores 1 to stop between steps. */
  cancel: SharedArrayBuffer;
}

export type ToWorker = LoadMessage | GenerateMessage;

export interface ModelInfo {
  name: string;
  dir: string;
  scheduler: string;
  defaults: ModelDefaults;
  providers: { textEncoder: string; unet: string; vaeDecoder: string };
  precision: string;
  timestepType: string;
  loadMs: number;
}

export type FromWorker =
  | { type: 'log'; level: 'info' | 'warn'; message: string; detail?: Record<string, unknown> }
  | { type: 'loaded'; info: ModelInfo }
  | { type: 'load-failed'; message: string; layout: boolean }
  | { type: 'progress'; id: number; done: number; total: number; startedAt: number; endedAt: number }
  | {
      type: 'done';
      id: number;
      images: { rgb: Uint8Array; width: number; height: number }[];
      timings: DiffusionTimings;
      steps: number;
      guidanceScale: number;
    }
  | { type: 'cancelled'; id: number; stepsDone: number; stoppedAt: number }
  | { type: 'failed'; id: number; message: string; userError: boolean };
