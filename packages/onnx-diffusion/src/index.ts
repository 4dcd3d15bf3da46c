/**
 * @story-agent/onnx-diffusion: Stable Diffusion on onnxruntime-node, from a
 * diffusers/Optimum ONNX export. The one entry point of the library; everything
 * else in src/ is internal.
 */
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
export type { DiffusionRequest, DiffusionTimings, StepTiming } from './diffusion.js';
export type { ModelDefaults, ModelFamily } from './model-loader.js';
export { wallClock } from './clock.js';
export type { FromWorker, GenerateMessage, LoadMessage, ModelInfo, ToWorker } from './worker-protocol.js';
