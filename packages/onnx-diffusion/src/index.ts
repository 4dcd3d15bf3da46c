/**
 * @story-agent/onnx-diffusion: Stable Diffusion on onnxruntime-node, from a
 * diffusers/Optimum ONNX export, in a worker thread. The one entry point of the
 * library; every other module in src/ is internal. See ../README.md.
 */
export {
  DiffusionErrorCode,
  DiffusionWorker,
  DiffusionWorkerError,
  type DiffusionGenerateOptions,
  type DiffusionLogger,
  type DiffusionOutput,
  type DiffusionWorkerOptions,
} from './diffusion-worker.js';
export {
  DIAGNOSTICS_CHANNELS,
  JobOutcome,
  type DiffusionJobReport,
  type DiffusionLoadedEvent,
  type DiffusionStepEvent,
} from './diagnostics.js';
export type { DiffusionRequest, DiffusionTimings, StepTiming } from './diffusion.js';
export { ClipTokenizer } from './clip-tokenizer.js';
export { DEFAULT_PROVIDERS, KNOWN_PROVIDERS, parseProviderList, type ProviderName } from './execution-providers.js';
export {
  COMPONENT_DIRS,
  CONFIG_DIRS,
  looksLikeModelDir,
  MODEL_FILES,
  ModelLayoutError,
  PULL_COMMAND,
  SOURCE_FILE,
  validateModelDir,
  type ModelFolder,
} from './model-layout.js';
export type { ModelDefaults, ModelFamily } from './model-loader.js';
export type { ModelInfo } from './worker-protocol.js';
