import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';

/**
 * Builds a tiny, random-weight Stable Diffusion export in the standard
 * diffusers/Optimum ONNX layout, from JavaScript, at test time:
 *
 *   model_index.json
 *   scheduler/scheduler_config.json
 *   tokenizer/{vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json}
 *   text_encoder/model.onnx   input_ids int32 [batch,77] → last_hidden_state [batch,77,D]
 *   unet/model.onnx           sample [2B,4,h,w], timestep, encoder_hidden_states [2B,77,D] → out_sample
 *   vae_decoder/model.onnx    latent_sample [B,4,h,w] → sample [B,3,8h,8w]
 *   vae_decoder/config.json
 *
 * The graphs are nonsense numerically but have the real names, dtypes and
 * shapes, and every output depends on every input, so a pipeline that mixes
 * up prompts, seeds, timesteps or batch rows makes different pictures.
 * Weights come from a seeded generator: the same options give the same bytes.
 */
const { onnx } = onnxProto;
type TensorProto = import('onnx-proto').onnx.ITensorProto;
type NodeProto = import('onnx-proto').onnx.INodeProto;
type ValueInfoProto = import('onnx-proto').onnx.IValueInfoProto;
type AttributeProto = import('onnx-proto').onnx.IAttributeProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;
const INT32 = onnx.TensorProto.DataType.INT32;
const INT64 = onnx.TensorProto.DataType.INT64;

export interface TinyModelOptions {
  /** Where to write; a new temp dir when unset. */
  dir?: string;
  /** UNet timestep input type (real exports use both). */
  timestepType?: 'int64' | 'float32';
  /** fp16: float16 weights and float16 inputs/outputs, as an Optimum `--fp16` export has. */
  precision?: 'fp32' | 'fp16';
  /** Puts the UNet weights in unet/model.onnx_data (external data), as large exports do. */
  externalData?: boolean;
  /** Text embedding width D. */
  hiddenSize?: number;
  /** UNet hidden channels and extra 3×3 conv layers: more of either makes each step slower (benchmarks, cancel tests). */
  unetChannels?: number;
  unetExtraLayers?: number;
  /** Adds the LCM `timestep_cond` input [batch, dim]. */
  timestepCondDim?: number;
  /** scheduler_config.json, merged over an EulerDiscreteScheduler config. */
  scheduler?: Record<string, unknown>;
  /** model_index.json `_name_or_path`. */
  name?: string;
  /** Seed of the weights. */
  seed?: number;
}

export interface TinyModel {
  dir: string;
  vocab: Record<string, number>;
  remove(): Promise<void>;
}

const TINY_SEQUENCE_LENGTH = 77;

/** A vocabulary that covers every byte (so any text tokenizes) plus the whole words the tests' prompts use. */
function tinyTokenizerFiles(): { vocab: Record<string, number>; merges: string[] } {
  const vocab: Record<string, number> = {};
  const byteChars = bytesToUnicode();
  let next = 0;
  for (const char of byteChars) vocab[char] = next++;
  for (const char of byteChars) vocab[`${char}</w>`] = next++;
  const merges: string[] = [];
  // Whole words, built from character merges the way real merges.txt files do.
  // Whole words, built from character merges the way real merges.txt files do: the words of the test fakes' prompts,
  // so a prompt costs about the CLIP tokens it would with a real vocabulary (one a word), not one a letter.
  const words = [
    'a',
    'photo',
    'of',
    'cat',
    'lighthouse',
    'storm',
    'keeper',
    'sea',
    'the',
    'an',
    'elderly',
    'woman',
    'silver',
    'braid',
    'yellow',
    'raincoat',
    'kind',
    'wrinkled',
    'face',
    'holding',
    'lantern',
    'on',
    'rocky',
    'point',
    'at',
    'dusk',
    'calm',
    'grey',
    'gulls',
    'far',
    'away',
    'clouds',
    'rolling',
    'over',
    'dark',
    'beam',
    'cutting',
    'rain',
    'cosy',
    'kitchen',
    'kettle',
    'stove',
    'window',
    'wooden',
    'door',
    'shaking',
    'in',
    'wind',
    'wet',
    'stone',
    'steps',
    'light',
    'top',
    'great',
    'lamp',
    'glowing',
    'below',
    'morning',
    'harbour',
    'fishing',
    'boats',
    'pale',
    'pink',
    'sky',
    'beach',
    'after',
    'driftwood',
    'puddles',
    'shining',
    'winding',
    'cliff',
    'path',
    'heather',
    'bent',
    'trees',
    'starry',
    'night',
    'sweeping',
    'village',
    'square',
    'by',
    'lanterns',
    'bunting',
    'small',
    'boat',
    'sunrise',
    'spring',
    'wildflowers',
    'rocks',
    'blue',
    'full',
    'body',
    'standing',
    'plain',
    'white',
    'background',
    'lonely',
    'crashing',
    'waves',
    'dramatic',
    'wide',
    'shot',
    'no',
    'people',
    'and',
    'with',
    'watercolor',
    'style',
    'illustration',
  ];
  for (const word of words) {
    let pieces = [...word];
    pieces[pieces.length - 1] += '</w>';
    while (pieces.length > 1) {
      const merged = pieces[0] + pieces[1];
      const merge = `${pieces[0]} ${pieces[1]}`;
      if (!merges.includes(merge)) merges.push(merge);
      if (!(merged in vocab)) vocab[merged] = next++;
      pieces = [merged, ...pieces.slice(2)];
    }
  }
  vocab['<|startoftext|>'] = next++;
  vocab['<|endoftext|>'] = next++;
  return { vocab, merges };
}

/** GPT-2/CLIP's byte → printable character table. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const chars: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    chars[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return chars;
}

/** mulberry32: small, seeded, good enough for weights. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function toHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign; // tiny weights flush to zero; fine for test models
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | ((mantissa + 0x1000) >>> 13);
}

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private count = 0;

  constructor(
    private readonly rng: () => number,
    private readonly precision: 'fp32' | 'fp16',
  ) {}

  get floatType(): number {
    return this.precision === 'fp16' ? FLOAT16 : FLOAT;
  }

  weight(name: string, dims: number[], scale: number): string {
    const size = dims.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: size }, () => (this.rng() * 2 - 1) * scale);
    return this.constant(name, dims, values);
  }

  constant(name: string, dims: number[], values: number[]): string {
    let raw: Uint8Array;
    if (this.precision === 'fp16') {
      const half = new Uint16Array(values.map(toHalf));
      raw = new Uint8Array(half.buffer);
    } else {
      raw = new Uint8Array(new Float32Array(values).buffer);
    }
    this.initializers.push({ name, dims, dataType: this.floatType, rawData: raw });
    return name;
  }

  /** Always float32, whatever the precision (Resize scales must be). */
  constantFloat32(name: string, values: number[]): string {
    this.initializers.push({ name, dims: [values.length], dataType: FLOAT, rawData: new Uint8Array(new Float32Array(values).buffer) });
    return name;
  }

  int64(name: string, values: number[]): string {
    this.initializers.push({ name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) });
    return name;
  }

  node(opType: string, inputs: string[], attributes: AttributeProto[] = [], output?: string): string {
    const out = output ?? `${opType.toLowerCase()}_${this.count++}`;
    this.nodes.push({ opType, input: inputs, output: [out], name: `${out}_node`, attribute: attributes });
    return out;
  }
}

const ints = (name: string, values: number[]): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });
const int = (name: string, value: number): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
const str = (name: string, value: string): AttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) });

function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  };
}

function encodeModel(name: string, graph: GraphBuilder, inputs: ValueInfoProto[], outputs: ValueInfoProto[]): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'story-agent tiny-sd-model',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name, node: graph.nodes, initializer: graph.initializers, input: inputs, output: outputs },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Moves the weights' bytes to `<dataFile>` next to the model, as `save_as_external_data` does;
 * small integer tensors (shapes, axes) stay inline, as there, because shape inference reads them.
 */
function externalize(graph: GraphBuilder, dataFile: string): Buffer {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const tensor of graph.initializers) {
    if (tensor.dataType === INT64) continue;
    const bytes = Buffer.from(tensor.rawData!);
    chunks.push(bytes);
    tensor.rawData = new Uint8Array(0);
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.externalData = [
      { key: 'location', value: dataFile },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.length) },
    ];
    offset += bytes.length;
  }
  return Buffer.concat(chunks);
}

export async function buildTinySdModel(options: TinyModelOptions = {}): Promise<TinyModel> {
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-sd-')));
  const precision = options.precision ?? 'fp32';
  const hidden = options.hiddenSize ?? 32;
  const channels = options.unetChannels ?? 8;
  const rng = random(options.seed ?? 1234);
  const { vocab, merges } = tinyTokenizerFiles();
  const vocabSize = Object.keys(vocab).length;

  const write = async (relative: string, content: string | Uint8Array) => {
    const file = path.join(dir, relative);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
  };

  // --- text encoder: embedding + position embedding → linear → tanh ---------------------
  {
    const g = new GraphBuilder(rng, precision);
    const embedded = g.node('Gather', [g.weight('token_embedding', [vocabSize, hidden], 1), 'input_ids'], [int('axis', 0)]);
    const positioned = g.node('Add', [embedded, g.weight('position_embedding', [TINY_SEQUENCE_LENGTH, hidden], 0.5)]);
    const projected = g.node('MatMul', [positioned, g.weight('projection', [hidden, hidden], 0.4)]);
    g.node('Tanh', [projected], [], 'last_hidden_state');
    await write(
      'text_encoder/model.onnx',
      encodeModel(
        'text_encoder',
        g,
        [valueInfo('input_ids', INT32, ['batch_size', 'sequence_length'])],
        [valueInfo('last_hidden_state', g.floatType, ['batch_size', 'sequence_length', hidden])],
      ),
    );
  }

  // --- UNet: conv(sample) + text context + timestep → tanh → conv ---------------------------
  {
    const g = new GraphBuilder(rng, precision);
    let h = g.node(
      'Conv',
      ['sample', g.weight('conv_in.weight', [channels, 4, 3, 3], 0.3), g.weight('conv_in.bias', [channels], 0.1)],
      [ints('pads', [1, 1, 1, 1])],
    );
    const context = g.node('ReduceMean', ['encoder_hidden_states'], [ints('axes', [1]), int('keepdims', 0)]);
    const contextProjected = g.node('MatMul', [context, g.weight('context_proj', [hidden, channels], 0.5)]);
    const context4d = g.node('Unsqueeze', [contextProjected, g.int64('unsqueeze_axes', [2, 3])]);
    const timeFloat = g.node('Cast', ['timestep'], [int('to', g.floatType)]);
    const timeScaled = g.node('Mul', [timeFloat, g.constant('time_scale', [], [0.001])]);
    const time4d = g.node('Reshape', [timeScaled, g.int64('time_shape', [-1, 1, 1, 1])]);
    const timeEmbedding = g.node('Mul', [time4d, g.weight('time_embedding', [1, channels, 1, 1], 1)]);
    h = g.node('Add', [h, context4d]);
    h = g.node('Add', [h, timeEmbedding]);
    if (options.timestepCondDim) {
      const cond = g.node('MatMul', ['timestep_cond', g.weight('cond_proj', [options.timestepCondDim, channels], 0.2)]);
      h = g.node('Add', [h, g.node('Unsqueeze', [cond, g.int64('cond_axes', [2, 3])])]);
    }
    h = g.node('Tanh', [h]);
    for (let layer = 0; layer < (options.unetExtraLayers ?? 0); layer++) {
      h = g.node(
        'Conv',
        [h, g.weight(`mid_${layer}.weight`, [channels, channels, 3, 3], 0.15), g.weight(`mid_${layer}.bias`, [channels], 0.05)],
        [ints('pads', [1, 1, 1, 1])],
      );
      h = g.node('Tanh', [h]);
    }
    const out = g.node('Conv', [h, g.weight('conv_out.weight', [4, channels, 3, 3], 0.2), g.weight('conv_out.bias', [4], 0.05)], [ints('pads', [1, 1, 1, 1])]);
    g.node('Tanh', [out], [], 'out_sample');
    const inputs = [
      valueInfo('sample', g.floatType, ['batch_size', 4, 'height', 'width']),
      valueInfo('timestep', options.timestepType === 'float32' ? (precision === 'fp16' ? FLOAT16 : FLOAT) : INT64, ['steps']),
      valueInfo('encoder_hidden_states', g.floatType, ['batch_size', 'sequence_length', hidden]),
    ];
    if (options.timestepCondDim) inputs.push(valueInfo('timestep_cond', g.floatType, ['batch_size', options.timestepCondDim]));
    const outputs = [valueInfo('out_sample', g.floatType, ['batch_size', 4, 'height', 'width'])];
    if (options.externalData) {
      const data = externalize(g, 'model.onnx_data');
      await write('unet/model.onnx_data', data);
    }
    await write('unet/model.onnx', encodeModel('unet', g, inputs, outputs));
  }

  // --- VAE decoder: ConvTranspose ×8 + Resize ×8 of a 1×1 conv → 3×3 conv → tanh -------------
  {
    const g = new GraphBuilder(rng, precision);
    const up = g.node('ConvTranspose', ['latent_sample', g.weight('up.weight', [4, 3, 8, 8], 0.4), g.weight('up.bias', [3], 0.1)], [ints('strides', [8, 8])]);
    const colour = g.node('Conv', ['latent_sample', g.weight('colour.weight', [3, 4, 1, 1], 0.5)]);
    const resized = g.node('Resize', [colour, '', g.constantFloat32('resize_scales', [1, 1, 8, 8])], [str('mode', 'nearest')]);
    const mixed = g.node('Add', [up, resized]);
    const smooth = g.node('Conv', [mixed, g.weight('smooth.weight', [3, 3, 3, 3], 0.3), g.weight('smooth.bias', [3], 0.05)], [ints('pads', [1, 1, 1, 1])]);
    g.node('Tanh', [smooth], [], 'sample');
    await write(
      'vae_decoder/model.onnx',
      encodeModel(
        'vae_decoder',
        g,
        [valueInfo('latent_sample', g.floatType, ['batch_size', 4, 'latent_height', 'latent_width'])],
        [valueInfo('sample', g.floatType, ['batch_size', 3, 'height', 'width'])],
      ),
    );
    await write('vae_decoder/config.json', JSON.stringify({ _class_name: 'AutoencoderKL', latent_channels: 4, scaling_factor: 0.18215 }, null, 2));
  }

  await write('tokenizer/vocab.json', JSON.stringify(vocab));
  await write('tokenizer/merges.txt', `${['#version: 0.2', ...merges].join('\n')}\n`);
  await write(
    'tokenizer/special_tokens_map.json',
    JSON.stringify({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' }),
  );
  await write('tokenizer/tokenizer_config.json', JSON.stringify({ model_max_length: TINY_SEQUENCE_LENGTH, do_lower_case: true }));
  await write(
    'scheduler/scheduler_config.json',
    JSON.stringify(
      {
        _class_name: 'EulerDiscreteScheduler',
        num_train_timesteps: 1000,
        beta_start: 0.00085,
        beta_end: 0.012,
        beta_schedule: 'scaled_linear',
        prediction_type: 'epsilon',
        timestep_spacing: 'leading',
        steps_offset: 1,
        ...options.scheduler,
      },
      null,
      2,
    ),
  );
  await write(
    'model_index.json',
    JSON.stringify(
      {
        _class_name: 'ORTStableDiffusionPipeline',
        _diffusers_version: '0.30.0',
        _name_or_path: options.name ?? 'story-agent/tiny-sd',
        scheduler: ['diffusers', (options.scheduler?._class_name as string) ?? 'EulerDiscreteScheduler'],
        text_encoder: ['onnxruntime', 'ORTModelTextEncoder'],
        tokenizer: ['transformers', 'CLIPTokenizer'],
        unet: ['onnxruntime', 'ORTModelUnet'],
        vae_decoder: ['onnxruntime', 'ORTModelVaeDecoder'],
      },
      null,
      2,
    ),
  );
  return { dir, vocab, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}
