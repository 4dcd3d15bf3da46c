import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Builds a tiny, random-weight chat model as a GGUF v3 file, from JavaScript,
 * at test time: the `qwen2` architecture (the default embedded model's, so
 * llama.cpp runs the same graph: RMSNorm, rotary attention with q/k/v biases
 * and grouped KV heads, a SwiGLU feed-forward) with a few layers of width 64,
 * and a real byte-level BPE tokenizer (`gpt2` model, `qwen2` pre-tokenizer):
 * all 256 byte symbols, a few merged words, and the ChatML control tokens
 * `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` with a ChatML chat template,
 * so node-llama-cpp picks its ChatML wrapper as it does for Qwen 2.5.
 *
 * File layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *   "GGUF", version 3 (u32), tensor count (u64), metadata count (u64),
 *   metadata (key string, value type u32, value), tensor infos (name, dims
 *   innermost first, ggml type, offset into the data), padding to
 *   `general.alignment` (32), then each tensor's F32 data, each aligned.
 *
 * The text it writes is gibberish, but not uniform gibberish: besides the
 * random weights, every token embedding carries a constant in dimension 0
 * that no layer writes to, so after the final RMSNorm that dimension is
 * large and the output row's weight there acts as a per-token prior
 * (a unigram bias). The prior favours words and letters, makes a closing `"`
 * likely (JSON strings end after a dozen tokens or so), and makes
 * `<|im_end|>` very rare (a story runs to its length cap), which is how a small
 * real model behaves with a grammar. Weights come from a seeded generator:
 * the same options give the same bytes.
 */
export interface TinyGgufOptions {
  /** Where to write; a new temp file when unset. */
  file?: string;
  /** Transformer blocks (each one costs time per token: more for benchmarks). */
  layers?: number;
  /** Hidden size; a multiple of `heads`. */
  hiddenSize?: number;
  heads?: number;
  /** KV heads (grouped-query attention when fewer than `heads`). */
  kvHeads?: number;
  feedForward?: number;
  /** Training context length written to the metadata. */
  contextLength?: number;
  seed?: number;
}

export interface TinyGgufModel {
  file: string;
  /** Tokens in the vocabulary. */
  vocabularySize: number;
  /** Removes the file (and the temp dir it made). */
  remove(): Promise<void>;
}

/** Whole words the vocabulary has as single tokens (each with and without a leading space). */
const WORDS = [
  'the',
  'a',
  'and',
  'fox',
  'star',
  'sea',
  'light',
  'house',
  'storm',
  'keeper',
  'night',
  'moon',
  'small',
  'old',
  'red',
  'blue',
  'green',
  'forest',
  'river',
  'sky',
  'she',
  'he',
  'was',
  'saw',
  'with',
  'in',
  'of',
  'to',
  'on',
  'friend',
  'wind',
  'wave',
  'tree',
  'hill',
  'boat',
  'cat',
  'bird',
];

const CONTROL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** ChatML, as Qwen 2.5 uses it (without its tool-calling parts). */
const CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's byte-to-symbol table: printable Latin-1 bytes stand for themselves, the rest map above U+0100. */
function byteSymbols(): string[] {
  const printable = (byte: number) => (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const symbols: string[] = [];
  let next = 0;
  for (let byte = 0; byte < 256; byte += 1) symbols.push(printable(byte) ? String.fromCharCode(byte) : String.fromCharCode(256 + next++));
  return symbols;
}

interface Vocabulary {
  tokens: string[];
  /** 1 normal, 3 control (llama.cpp's token types). */
  types: number[];
  merges: string[];
  /** The prior logit of each token (see the file comment). */
  prior: number[];
  eos: number;
  bos: number;
}

function vocabulary(): Vocabulary {
  const symbols = byteSymbols();
  const tokens: string[] = [];
  const prior: number[] = [];
  const add = (token: string, bias: number) => {
    if (tokens.includes(token)) return;
    tokens.push(token);
    prior.push(bias);
  };
  for (let byte = 0; byte < 256; byte += 1) {
    const char = String.fromCharCode(byte);
    const bias = /[a-z]/.test(char)
      ? 0
      : /[A-Z]/.test(char)
        ? -1
        : char === '"'
          ? 3
          : char === ' '
            ? 0.5
            : /[.,]/.test(char)
              ? -0.5
              : byte >= 0x21 && byte <= 0x7e
                ? -3
                : // Control bytes, newline, tab and bytes of multi-byte UTF-8: possible, but rare.
                  -8;
    add(symbols[byte], bias);
  }
  const space = symbols[0x20];
  const merges: string[] = [];
  for (const word of WORDS) {
    for (const prefix of ['', space]) {
      let piece = prefix + word[0];
      if (prefix) {
        add(piece, 0.5);
        if (!merges.includes(`${prefix} ${word[0]}`)) merges.push(`${prefix} ${word[0]}`);
      }
      for (const char of word.slice(1)) {
        const merge = `${piece} ${char}`;
        piece += char;
        if (!merges.includes(merge)) merges.push(merge);
        add(piece, piece.length === (prefix + word).length ? 1.5 : 0);
      }
    }
  }
  const types = tokens.map(() => 1);
  for (const control of CONTROL) {
    tokens.push(control);
    types.push(3);
    prior.push(control === '<|im_end|>' ? -10 : -30);
  }
  return { tokens, types, merges, prior, eos: tokens.indexOf('<|im_end|>'), bos: tokens.indexOf('<|endoftext|>') };
}

/** mulberry32: a small seeded generator; Box–Muller on top for normal samples. */
function normalGenerator(seed: number): (std: number) => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (std) => std * Math.sqrt(-2 * Math.log(uniform() || 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

interface Tensor {
  name: string;
  /** Innermost first, as GGUF stores them: a matrix mapping n inputs to m outputs is [n, m]. */
  dims: number[];
  data: Float32Array;
}

const GGUF_TYPE = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
const GGML_TYPE_F32 = 0;
const ALIGNMENT = 32;

type MetadataValue = { type: 'u32'; value: number } | { type: 'f32'; value: number } | { type: 'bool'; value: boolean } | string | string[] | number[];

/** Appends little-endian GGUF values to a growing list of buffers. */
class GgufWriter {
  private readonly parts: Buffer[] = [];
  size = 0;

  private push(buffer: Buffer): void {
    this.parts.push(buffer);
    this.size += buffer.length;
  }
  u32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32LE(value);
    this.push(buffer);
  }
  i32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32LE(value);
    this.push(buffer);
  }
  u64(value: number): void {
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64LE(BigInt(value));
    this.push(buffer);
  }
  f32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeFloatLE(value);
    this.push(buffer);
  }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  bytes(buffer: Buffer): void {
    this.push(buffer);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.size % alignment)) % alignment;
    if (pad > 0) this.push(Buffer.alloc(pad));
  }
  metadata(key: string, value: MetadataValue): void {
    this.string(key);
    if (typeof value === 'string') {
      this.u32(GGUF_TYPE.STRING);
      this.string(value);
    } else if (Array.isArray(value)) {
      this.u32(GGUF_TYPE.ARRAY);
      const strings = value.length > 0 && typeof value[0] === 'string';
      this.u32(strings ? GGUF_TYPE.STRING : GGUF_TYPE.INT32);
      this.u64(value.length);
      for (const item of value) {
        if (typeof item === 'string') this.string(item);
        else this.i32(item);
      }
    } else if (value.type === 'u32') {
      this.u32(GGUF_TYPE.UINT32);
      this.u32(value.value);
    } else if (value.type === 'f32') {
      this.u32(GGUF_TYPE.FLOAT32);
      this.f32(value.value);
    } else {
      this.u32(GGUF_TYPE.BOOL);
      this.push(Buffer.from([value.value ? 1 : 0]));
    }
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Writes the model and returns where it is. */
export async function buildTinyGgufModel(options: TinyGgufOptions = {}): Promise<TinyGgufModel> {
  const layers = options.layers ?? 2;
  const hidden = options.hiddenSize ?? 64;
  const heads = options.heads ?? 4;
  const kvHeads = options.kvHeads ?? 2;
  const feedForward = options.feedForward ?? 128;
  const headDim = hidden / heads;
  const vocab = vocabulary();
  const normal = normalGenerator(options.seed ?? 1234);
  const random = (count: number, std: number) => Float32Array.from({ length: count }, () => normal(std));
  const ones = (count: number) => new Float32Array(count).fill(1);
  /** A matrix from `inputs` to `outputs` whose output dimension 0 stays zero: no layer disturbs the prior's constant. */
  const intoResidual = (inputs: number, std: number) => {
    const data = random(inputs * hidden, std);
    data.fill(0, 0, inputs);
    return data;
  };
  const n = vocab.tokens.length;

  const embeddings = random(n * hidden, 0.1);
  for (let token = 0; token < n; token += 1) embeddings[token * hidden] = 1;
  const output = random(n * hidden, 0.15);
  // After the final RMSNorm dimension 0 is about 1 / rms(residual) ≈ 6.
  for (let token = 0; token < n; token += 1) output[token * hidden] = vocab.prior[token] / 6;

  const tensors: Tensor[] = [{ name: 'token_embd.weight', dims: [hidden, n], data: embeddings }];
  for (let layer = 0; layer < layers; layer += 1) {
    const block = `blk.${layer}`;
    tensors.push(
      { name: `${block}.attn_norm.weight`, dims: [hidden], data: ones(hidden) },
      { name: `${block}.attn_q.weight`, dims: [hidden, hidden], data: random(hidden * hidden, 0.2) },
      { name: `${block}.attn_q.bias`, dims: [hidden], data: random(hidden, 0.02) },
      { name: `${block}.attn_k.weight`, dims: [hidden, kvHeads * headDim], data: random(hidden * kvHeads * headDim, 0.2) },
      { name: `${block}.attn_k.bias`, dims: [kvHeads * headDim], data: random(kvHeads * headDim, 0.02) },
      { name: `${block}.attn_v.weight`, dims: [hidden, kvHeads * headDim], data: random(hidden * kvHeads * headDim, 0.2) },
      { name: `${block}.attn_v.bias`, dims: [kvHeads * headDim], data: random(kvHeads * headDim, 0.02) },
      { name: `${block}.attn_output.weight`, dims: [hidden, hidden], data: intoResidual(hidden, 0.02) },
      { name: `${block}.ffn_norm.weight`, dims: [hidden], data: ones(hidden) },
      { name: `${block}.ffn_gate.weight`, dims: [hidden, feedForward], data: random(hidden * feedForward, 0.2) },
      { name: `${block}.ffn_up.weight`, dims: [hidden, feedForward], data: random(hidden * feedForward, 0.2) },
      { name: `${block}.ffn_down.weight`, dims: [feedForward, hidden], data: intoResidual(feedForward, 0.02) },
    );
  }
  tensors.push({ name: 'output_norm.weight', dims: [hidden], data: ones(hidden) }, { name: 'output.weight', dims: [hidden, n], data: output });

  const metadata: [string, MetadataValue][] = [
    ['general.architecture', 'qwen2'],
    ['general.name', 'tiny-qwen2-test'],
    ['general.alignment', { type: 'u32', value: ALIGNMENT }],
    ['qwen2.context_length', { type: 'u32', value: options.contextLength ?? 8192 }],
    ['qwen2.embedding_length', { type: 'u32', value: hidden }],
    ['qwen2.block_count', { type: 'u32', value: layers }],
    ['qwen2.feed_forward_length', { type: 'u32', value: feedForward }],
    ['qwen2.attention.head_count', { type: 'u32', value: heads }],
    ['qwen2.attention.head_count_kv', { type: 'u32', value: kvHeads }],
    ['qwen2.rope.freq_base', { type: 'f32', value: 1_000_000 }],
    ['qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-6 }],
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', 'qwen2'],
    ['tokenizer.ggml.tokens', vocab.tokens],
    ['tokenizer.ggml.token_type', vocab.types],
    ['tokenizer.ggml.merges', vocab.merges],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: vocab.bos }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: vocab.eos }],
    ['tokenizer.ggml.padding_token_id', { type: 'u32', value: vocab.bos }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.chat_template', CHAT_TEMPLATE],
  ];

  const header = new GgufWriter();
  header.bytes(Buffer.from('GGUF', 'ascii'));
  header.u32(3);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) header.metadata(key, value);
  let offset = 0;
  for (const tensor of tensors) {
    header.string(tensor.name);
    header.u32(tensor.dims.length);
    for (const dim of tensor.dims) header.u64(dim);
    header.u32(GGML_TYPE_F32);
    header.u64(offset);
    offset += Math.ceil(tensor.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  header.padTo(ALIGNMENT);
  for (const tensor of tensors) {
    header.bytes(Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    header.padTo(ALIGNMENT);
  }

  const tempDir = options.file ? null : await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-gguf-'));
  const file = options.file ?? path.join(tempDir as string, 'tiny-qwen2.gguf');
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, header.toBuffer());
  return {
    file,
    vocabularySize: n,
    remove: () => fs.rm(tempDir ?? file, { recursive: true, force: true }),
  };
}
