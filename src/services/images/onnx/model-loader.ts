import type { InferenceSession } from 'onnxruntime-node';
import { ClipTokenizer } from './clip-tokenizer.js';
import { NoProviderError, ProviderChain, type ProviderFallback, type ProviderName, type SessionFactory } from './execution-providers.js';
import { ModelLayoutError, validateModelDir, type ModelFolder, type SchedulerConfig } from './model-layout.js';
import { schedulerKindOf, type SchedulerKind } from './schedulers.js';

/**
 * Opens a Stable Diffusion export in the diffusers/Optimum ONNX layout: checks
 * the files, opens the three sessions (on the first execution provider that
 * works) and reads every input and output name, dtype and shape from the
 * sessions themselves, because exports differ (int64 or float timesteps,
 * float16 or float32 tensors, fixed or dynamic batch and size).
 */
export type TensorType = 'float32' | 'float16' | 'int32' | 'int64';

export interface TensorSpec {
  name: string;
  type: TensorType;
  /** Numbers are fixed dimensions; strings are symbolic (dynamic). */
  shape: (number | string)[];
}

export type ModelFamily = 'turbo' | 'lcm' | 'sd';

export interface ModelDefaults {
  family: ModelFamily;
  steps: number;
  /** ≤ 1 means no classifier-free guidance (one UNet row per image instead of two). */
  guidanceScale: number;
}

export interface LoadedModel {
  folder: ModelFolder;
  tokenizer: ClipTokenizer;
  schedulerKind: SchedulerKind | null;
  /** scheduler_config.json, with what the model family requires whatever the file says. */
  schedulerConfig: SchedulerConfig;
  defaults: ModelDefaults;
  sessions: { textEncoder: InferenceSession; unet: InferenceSession; vaeDecoder: InferenceSession };
  providers: { textEncoder: ProviderName; unet: ProviderName; vaeDecoder: ProviderName };
  fallbacks: ProviderFallback[];
  io: {
    textEncoder: { inputIds: TensorSpec; output: TensorSpec; sequenceLength: number; fixedBatch: number | null };
    unet: {
      sample: TensorSpec;
      timestep: TensorSpec;
      encoderHiddenStates: TensorSpec;
      /** LCM's guidance embedding input, when the UNet was distilled with one. */
      timestepCond: TensorSpec | null;
      output: TensorSpec;
      latentChannels: number;
      fixedBatch: number | null;
      /** Latent height and width when the export fixed them. */
      fixedLatentSize: [number, number] | null;
    };
    vaeDecoder: { latent: TensorSpec; output: TensorSpec; fixedBatch: number | null };
  };
}

export interface LoadOptions {
  providers: readonly ProviderName[];
  factory: SessionFactory;
  onFallback: (fallback: ProviderFallback, next: ProviderName | null) => void;
  /** Things worth a log line that do not stop the load. */
  onNote?: (message: string) => void;
  sessionOptions?: InferenceSession.SessionOptions;
}

export async function loadModel(dir: string, options: LoadOptions): Promise<LoadedModel> {
  const folder = validateModelDir(dir);
  const chain = new ProviderChain(options.providers, options.factory, options.onFallback);
  const sessionOptions: InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: 3, ...options.sessionOptions };
  const open = async (file: string) => {
    try {
      return await chain.open(file, sessionOptions);
    } catch (error) {
      if (error instanceof NoProviderError) throw error;
      throw new ModelLayoutError(file, `could not be opened by ONNX Runtime: ${firstLine(error)}`);
    }
  };
  const textEncoder = await open(folder.paths.textEncoder);
  const unet = await open(folder.paths.unet);
  const vaeDecoder = await open(folder.paths.vaeDecoder);
  const sessions = { textEncoder: textEncoder.session, unet: unet.session, vaeDecoder: vaeDecoder.session };
  try {
    const io = describeIo(folder, sessions);
    const tokenizer = ClipTokenizer.fromDirectory(folder.paths.tokenizerDir, io.textEncoder.sequenceLength);
    const schedulerKind = schedulerKindOf(folder.scheduler);
    const defaults = defaultsFor(folder, schedulerKind, io.unet.timestepCond !== null);
    let schedulerConfig = folder.scheduler;
    // Turbo models are distilled at t=999: with "leading" spacing one step would start from t=1, on pure noise.
    if (defaults.family === 'turbo' && schedulerConfig.timestep_spacing !== 'trailing' && schedulerKind !== 'lcm') {
      options.onNote?.(
        `scheduler: ${folder.name} is a turbo model; using trailing timesteps (scheduler_config.json says ${String(schedulerConfig.timestep_spacing ?? 'nothing')})`,
      );
      schedulerConfig = { ...schedulerConfig, timestep_spacing: 'trailing' };
    }
    return {
      folder,
      tokenizer,
      schedulerKind,
      schedulerConfig,
      defaults,
      sessions,
      providers: { textEncoder: textEncoder.provider, unet: unet.provider, vaeDecoder: vaeDecoder.provider },
      fallbacks: chain.fallbacks,
      io,
    };
  } catch (error) {
    await Promise.all(Object.values(sessions).map((session) => session.release().catch(() => undefined)));
    throw error;
  }
}

/**
 * Steps and guidance that suit the model when NUM_INFERENCE_STEPS / GUIDANCE_SCALE are unset:
 * turbo models are distilled for 1 step without guidance, LCM for ~4 steps with guidance
 * embedded in the UNet (or none), everything else is a classic 25-step, 7.5-guidance model.
 */
export function defaultsFor(folder: Pick<ModelFolder, 'aliases'>, schedulerKind: SchedulerKind | null, hasTimestepCond: boolean): ModelDefaults {
  const known = (pattern: RegExp) => folder.aliases.some((alias) => pattern.test(alias));
  if (schedulerKind !== 'lcm' && known(/turbo/i)) return { family: 'turbo', steps: 1, guidanceScale: 0 };
  if (schedulerKind === 'lcm' || known(/(^|[^a-z])lcm([^a-z]|$)|latent.?consistency/i)) {
    return { family: 'lcm', steps: 4, guidanceScale: hasTimestepCond ? 8 : 1 };
  }
  return { family: 'sd', steps: 25, guidanceScale: 7.5 };
}

function describeIo(folder: ModelFolder, sessions: LoadedModel['sessions']): LoadedModel['io'] {
  const te = specs(sessions.textEncoder, 'input');
  const teOut = specs(sessions.textEncoder, 'output');
  const un = specs(sessions.unet, 'input');
  const unOut = specs(sessions.unet, 'output');
  const vae = specs(sessions.vaeDecoder, 'input');
  const vaeOut = specs(sessions.vaeDecoder, 'output');
  const where = folder.paths;

  const inputIds = pick(te, ['input_ids'], (s) => s.type === 'int32' || s.type === 'int64', where.textEncoder, 'an int32/int64 input_ids input');
  if (inputIds.type !== 'int32' && inputIds.type !== 'int64')
    throw new ModelLayoutError(where.textEncoder, `input_ids is ${inputIds.type}; expected int32 or int64`);
  const hidden = pick(teOut, ['last_hidden_state'], (s) => s.shape.length === 3, where.textEncoder, 'a last_hidden_state output [batch, 77, D]');
  const sequenceLength = typeof inputIds.shape[1] === 'number' ? inputIds.shape[1] : typeof hidden.shape[1] === 'number' ? hidden.shape[1] : 77;

  const sample = pick(un, ['sample'], (s) => s.shape.length === 4 && isFloat(s), where.unet, 'a 4-D float sample input');
  const timestep = pick(un, ['timestep', 'timesteps', 't'], (s) => s.shape.length <= 1, where.unet, 'a timestep input');
  const encoderHiddenStates = pick(un, ['encoder_hidden_states'], (s) => s.shape.length === 3 && isFloat(s), where.unet, 'an encoder_hidden_states input');
  const timestepCond = un.find((s) => s.name === 'timestep_cond') ?? null;
  const known = new Set([sample.name, timestep.name, encoderHiddenStates.name, timestepCond?.name]);
  const extra = un.filter((s) => !known.has(s.name)).map((s) => s.name);
  if (extra.length > 0) {
    throw new ModelLayoutError(
      where.unet,
      `needs inputs this pipeline does not provide (${extra.join(', ')}); only SD 1.x/2.x-style UNets are supported (SDXL is not)`,
    );
  }
  const unetOutput = pick(unOut, ['out_sample'], (s) => s.shape.length === 4, where.unet, 'an out_sample output');
  const latent = pick(vae, ['latent_sample'], (s) => s.shape.length === 4 && isFloat(s), where.vaeDecoder, 'a 4-D latent_sample input');
  const image = pick(vaeOut, ['sample'], (s) => s.shape.length === 4, where.vaeDecoder, 'a 4-D sample output');
  for (const [spec, file] of [
    [hidden, where.textEncoder],
    [unetOutput, where.unet],
    [image, where.vaeDecoder],
  ] as const) {
    if (!isFloat(spec)) throw new ModelLayoutError(file, `output ${spec.name} is ${spec.type}; expected float32 or float16`);
  }
  const [height, width] = [sample.shape[2], sample.shape[3]];
  return {
    textEncoder: { inputIds, output: hidden, sequenceLength, fixedBatch: fixedDim(inputIds.shape[0]) },
    unet: {
      sample,
      timestep,
      encoderHiddenStates,
      timestepCond,
      output: unetOutput,
      latentChannels: typeof sample.shape[1] === 'number' ? sample.shape[1] : 4,
      fixedBatch: fixedDim(sample.shape[0]),
      fixedLatentSize: typeof height === 'number' && typeof width === 'number' ? [height, width] : null,
    },
    vaeDecoder: { latent, output: image, fixedBatch: fixedDim(latent.shape[0]) },
  };
}

function specs(session: InferenceSession, side: 'input' | 'output'): TensorSpec[] {
  const metadata = side === 'input' ? session.inputMetadata : session.outputMetadata;
  return metadata
    .filter((entry): entry is InferenceSession.ValueMetadata & { isTensor: true } => entry.isTensor)
    .map((entry) => ({ name: entry.name, type: entry.type as TensorType, shape: [...entry.shape] as (number | string)[] }));
}

function pick(candidates: TensorSpec[], names: string[], fits: (spec: TensorSpec) => boolean, file: string, wanted: string): TensorSpec {
  const byName = candidates.find((spec) => names.includes(spec.name));
  if (byName) {
    if (!fits(byName)) throw new ModelLayoutError(file, `has ${byName.name} as ${byName.type} [${byName.shape.join(', ')}]; expected ${wanted}`);
    return byName;
  }
  const byShape = candidates.filter(fits);
  if (byShape.length === 1) return byShape[0];
  throw new ModelLayoutError(
    file,
    `has no ${wanted} (found: ${candidates.map((spec) => `${spec.name} ${spec.type} [${spec.shape.join(', ')}]`).join('; ') || 'none'})`,
  );
}

function isFloat(spec: TensorSpec): boolean {
  return spec.type === 'float32' || spec.type === 'float16';
}

function fixedDim(dim: number | string | undefined): number | null {
  return typeof dim === 'number' && dim > 0 ? dim : null;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (
    message
      .split('\n')
      .find((line) => line.trim())
      ?.trim()
      .slice(0, 400) ?? 'unknown error'
  );
}
