import fs from 'node:fs';
import path from 'node:path';

/**
 * The standard diffusers/Optimum ONNX layout of a Stable Diffusion export, and
 * the cheap, synchronous checks on it. Kept free of onnxruntime so that the
 * configuration can ask "is there a model here?" without loading a native addon.
 */
export const MODEL_FILES = {
  index: 'model_index.json',
  scheduler: 'scheduler/scheduler_config.json',
  vocab: 'tokenizer/vocab.json',
  merges: 'tokenizer/merges.txt',
  textEncoder: 'text_encoder/model.onnx',
  unet: 'unet/model.onnx',
  vaeDecoder: 'vae_decoder/model.onnx',
} as const;

/** Folders and files the pull script downloads; everything else in a repository (safetensors, vae_encoder, samples) is skipped. */
export const COMPONENT_DIRS = ['text_encoder', 'unet', 'vae_decoder'] as const;
export const CONFIG_DIRS = ['tokenizer', 'scheduler'] as const;

/** Written by `npm run models:pull` next to the model: where it came from. */
export const SOURCE_FILE = 'story-agent-source.json';

export const PULL_COMMAND = 'npm run models:pull';

export class ModelLayoutError extends Error {
  override name = 'ModelLayoutError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file} ${problem}`);
  }
}

/** True when the folder looks like it holds a model (its index file is there); the full check is validateModelDir. */
export function looksLikeModelDir(dir: string): boolean {
  try {
    return fs.statSync(path.join(dir, MODEL_FILES.index)).isFile();
  } catch {
    return false;
  }
}

interface ModelIndex {
  _class_name?: string;
  _name_or_path?: string;
  scheduler?: [string | null, string | null];
  [component: string]: unknown;
}

export interface SchedulerConfig {
  _class_name?: string;
  [key: string]: unknown;
}

export interface ModelFolder {
  dir: string;
  index: ModelIndex;
  scheduler: SchedulerConfig;
  /** The VAE's latent scale: vae_decoder/config.json `scaling_factor`, else SD's 0.18215. */
  vaeScalingFactor: number;
  /** A human name: the index's `_name_or_path`, the pulled repository, or the folder name. */
  name: string;
  /** Everything the model is known as (index name, pulled repository, folder), for recognising its family. */
  aliases: string[];
  paths: { textEncoder: string; unet: string; vaeDecoder: string; tokenizerDir: string };
}

/**
 * Checks every file the pipeline needs is present and every JSON file parses;
 * throws ModelLayoutError naming the first file that is missing or malformed.
 */
export function validateModelDir(dir: string): ModelFolder {
  if (!fs.existsSync(dir)) throw new ModelLayoutError(dir, `does not exist: download a model with \`${PULL_COMMAND}\``);
  const file = (relative: string) => path.join(dir, relative);
  const index = readJsonFile<ModelIndex>(file(MODEL_FILES.index));
  if (typeof index !== 'object' || index === null || Array.isArray(index)) throw new ModelLayoutError(file(MODEL_FILES.index), 'is not a JSON object');
  const scheduler = readJsonFile<SchedulerConfig>(file(MODEL_FILES.scheduler));
  for (const relative of [MODEL_FILES.vocab, MODEL_FILES.merges, MODEL_FILES.textEncoder, MODEL_FILES.unet, MODEL_FILES.vaeDecoder]) {
    const full = file(relative);
    let size: number;
    try {
      size = fs.statSync(full).size;
    } catch {
      throw new ModelLayoutError(full, `is missing (a Stable Diffusion ONNX export needs ${relative}; \`${PULL_COMMAND}\` fetches a complete one)`);
    }
    if (size === 0) throw new ModelLayoutError(full, 'is empty (an interrupted download? run the pull again)');
  }
  readJsonFile<Record<string, number>>(file(MODEL_FILES.vocab));
  const vaeConfig = fs.existsSync(file('vae_decoder/config.json')) ? readJsonFile<{ scaling_factor?: unknown }>(file('vae_decoder/config.json')) : {};
  const source = fs.existsSync(file(SOURCE_FILE)) ? readJsonFile<{ repo?: unknown }>(file(SOURCE_FILE)) : {};
  const name =
    (typeof index._name_or_path === 'string' && index._name_or_path) || (typeof source.repo === 'string' && source.repo) || path.basename(path.resolve(dir));
  return {
    dir,
    index,
    scheduler,
    vaeScalingFactor: typeof vaeConfig.scaling_factor === 'number' ? vaeConfig.scaling_factor : 0.18215,
    name,
    aliases: [index._name_or_path, source.repo, path.basename(path.resolve(dir))].filter((alias): alias is string => typeof alias === 'string' && alias !== ''),
    paths: {
      textEncoder: file(MODEL_FILES.textEncoder),
      unet: file(MODEL_FILES.unet),
      vaeDecoder: file(MODEL_FILES.vaeDecoder),
      tokenizerDir: file('tokenizer'),
    },
  };
}

function readJsonFile<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ModelLayoutError(file, `is missing (\`${PULL_COMMAND}\` fetches a complete model)`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ModelLayoutError(file, `is not valid JSON (${(error as Error).message})`);
  }
}
