import fs from 'node:fs';
import path from 'node:path';
import { ModelLayoutError } from './model-layout.js';

/**
 * CLIP's byte-level BPE tokenizer, read from a model's tokenizer/vocab.json and
 * tokenizer/merges.txt. Written here rather than taken from a library because no
 * dependency we have loads those two files offline; it follows openai/CLIP's
 * simple_tokenizer.py and transformers' CLIPTokenizer (without ftfy: text is
 * NFC-normalised, whitespace-collapsed and lower-cased instead).
 */
export interface Tokenized {
  /** Exactly `maxLength` ids: start, tokens, end, then padding. */
  ids: number[];
  /** Tokens between start and end before truncation. */
  tokenCount: number;
  /** True when tokens past `maxLength - 2` were dropped. */
  truncated: boolean;
}

export interface ClipTokenizerSpec {
  vocab: Record<string, number>;
  /** merges.txt lines ("a b"), best first; a "#version" header is skipped. */
  merges: string[];
  bosToken?: string;
  eosToken?: string;
  /** SD 1.x pads with the end token; SD 2.x (OpenCLIP) pads with "!". */
  padToken?: string;
  unkToken?: string;
  maxLength?: number;
}

// The pattern from CLIP's simple_tokenizer.py; \p{L}/\p{N} stand in for its regex-module classes.
const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

export class ClipTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly byteEncoder = bytesToUnicode();
  private readonly encoder = new TextEncoder();

  constructor(spec: ClipTokenizerSpec) {
    this.vocab = new Map(Object.entries(spec.vocab));
    let rank = 0;
    for (const line of spec.merges) {
      if (line.startsWith('#version') || line.trim() === '') continue;
      this.ranks.set(line.trim(), rank++);
    }
    this.maxLength = spec.maxLength ?? 77;
    if (this.maxLength < 2) throw new Error(`CLIP tokenizer max length must be at least 2 (got ${this.maxLength})`);
    const id = (token: string, role: string) => {
      const value = this.vocab.get(token);
      if (value === undefined) throw new Error(`the ${role} token ${JSON.stringify(token)} is not in vocab.json`);
      return value;
    };
    this.bosId = id(spec.bosToken ?? '<|startoftext|>', 'start');
    this.eosId = id(spec.eosToken ?? '<|endoftext|>', 'end');
    this.padId = id(spec.padToken ?? spec.eosToken ?? '<|endoftext|>', 'padding');
    this.unkId = id(spec.unkToken ?? spec.eosToken ?? '<|endoftext|>', 'unknown');
  }

  /** Reads tokenizer/ of a diffusers layout; errors name the file that is missing or malformed. */
  static fromDirectory(tokenizerDir: string, maxLength?: number): ClipTokenizer {
    const vocab = readJson<Record<string, number>>(path.join(tokenizerDir, 'vocab.json'));
    const mergesFile = path.join(tokenizerDir, 'merges.txt');
    if (!fs.existsSync(mergesFile)) throw new ModelLayoutError(mergesFile, 'is missing');
    const merges = fs.readFileSync(mergesFile, 'utf8').split('\n');
    const special = readOptionalJson<Record<string, unknown>>(path.join(tokenizerDir, 'special_tokens_map.json')) ?? {};
    const config = readOptionalJson<Record<string, unknown>>(path.join(tokenizerDir, 'tokenizer_config.json')) ?? {};
    const token = (name: string) => tokenContent(special[name]) ?? tokenContent(config[name]);
    const configuredLength = typeof config.model_max_length === 'number' && config.model_max_length <= 1024 ? config.model_max_length : undefined;
    try {
      return new ClipTokenizer({
        vocab,
        merges,
        bosToken: token('bos_token'),
        eosToken: token('eos_token'),
        padToken: token('pad_token'),
        unkToken: token('unk_token'),
        maxLength: maxLength ?? configuredLength,
      });
    } catch (error) {
      throw new ModelLayoutError(path.join(tokenizerDir, 'vocab.json'), `is not a CLIP vocabulary: ${(error as Error).message}`);
    }
  }

  /** The BPE pieces of a text, without special tokens; exposed for tests and diagnostics. */
  pieces(text: string): string[] {
    const pieces: string[] = [];
    for (const match of normalize(text).matchAll(PATTERN)) {
      const word = match[0];
      if (word === '<|startoftext|>' || word === '<|endoftext|>') {
        pieces.push(word);
        continue;
      }
      let encoded = '';
      for (const byte of this.encoder.encode(word)) encoded += this.byteEncoder[byte];
      pieces.push(...this.bpe(encoded));
    }
    return pieces;
  }

  encode(text: string): Tokenized {
    const tokens = this.pieces(text).map((piece) => this.vocab.get(piece) ?? this.unkId);
    const room = this.maxLength - 2;
    const kept = tokens.slice(0, room);
    const ids = [this.bosId, ...kept, this.eosId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    return { ids, tokenCount: tokens.length, truncated: tokens.length > room };
  }

  /**
   * The longest run of whole words from the start of `text` that the text encoder reads in full
   * (maxLength − 2 tokens, 75 for CLIP), so a caller can record what the model actually saw
   * instead of a prompt the encoder silently cut. `tokenCount` is the whole text's.
   */
  fit(text: string): { text: string; tokenCount: number; truncated: boolean } {
    const room = this.maxLength - 2;
    const tokenCount = this.pieces(text).length;
    if (tokenCount <= room) return { text, tokenCount, truncated: false };
    const words = text.split(/\s+/).filter(Boolean);
    let used = 0;
    let kept = 0;
    // CLIP's word pattern never spans whitespace, so a prefix costs the sum of its words' pieces.
    while (kept < words.length) {
      const cost = this.pieces(words[kept]).length;
      if (used + cost > room) break;
      used += cost;
      kept += 1;
    }
    return {
      text: words
        .slice(0, kept)
        .join(' ')
        .replace(/[\s,;:]+$/, ''),
      tokenCount,
      truncated: true,
    };
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars.at(-1)}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const [first, second] = [word[best], word[best + 1]];
      // Merge every occurrence of the best pair, left to right, as the reference does.
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]);
        }
      }
      word = merged;
    }
    if (this.cache.size < 10_000) this.cache.set(token, word);
    return word;
  }
}

function normalize(text: string): string {
  return text.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
}

/** GPT-2/CLIP's reversible byte → printable character table. */
export function bytesToUnicode(): string[] {
  const direct = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const table: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) table[b] = direct(b) ? String.fromCharCode(b) : String.fromCharCode(256 + shifted++);
  return table;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new ModelLayoutError(file, 'is missing');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (error) {
    throw new ModelLayoutError(file, `is not valid JSON (${(error as Error).message})`);
  }
}

function readOptionalJson<T>(file: string): T | null {
  return fs.existsSync(file) ? readJson<T>(file) : null;
}
