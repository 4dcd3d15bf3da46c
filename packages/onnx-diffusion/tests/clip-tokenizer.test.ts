import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToUnicode, ClipTokenizer } from '../src/clip-tokenizer.js';
import { ModelLayoutError } from '../src/model-layout.js';

/**
 * The real CLIP vocabulary (49 408 entries) cannot be downloaded here, so the BPE
 * algorithm is checked against small handcrafted vocabularies whose results can be
 * derived by hand. Merges, best rank first:
 *   0 "p h"  1 "o t"  2 "ph ot"  3 "phot o</w>"  4 "o f</w>"  5 "c a"  6 "ca t</w>"  7 "o t</w>"  8 "p o"
 */
const MERGES = ['#version: 0.2', 'p h', 'o t', 'ph ot', 'phot o</w>', 'o f</w>', 'c a', 'ca t</w>', 'o t</w>', 'p o'];

function handVocab(): Record<string, number> {
  const tokens = [
    'a',
    'c',
    'f',
    'h',
    'o',
    'p',
    't', // 0–6
    'a</w>',
    'f</w>',
    'o</w>',
    't</w>', // 7–10
    'ph',
    'ot',
    'phot',
    'photo</w>',
    'of</w>',
    'ca',
    'cat</w>', // 11–17
    '<|startoftext|>',
    '<|endoftext|>',
    '!',
    ',</w>',
    '4</w>',
    '2</w>',
    'ot</w>',
    'po',
    'Ã',
    '©</w>', // 18–27
  ];
  return Object.fromEntries(tokens.map((token, id) => [token, id]));
}

const tokenizer = (options: { maxLength?: number; padToken?: string } = {}) => new ClipTokenizer({ vocab: handVocab(), merges: MERGES, ...options });

describe('CLIP BPE on a handcrafted vocabulary', () => {
  it('merges by rank: "photo" → p h o t o</w> → ph o t o</w> → ph ot o</w> → phot o</w> → photo</w>', () => {
    expect(tokenizer().pieces('photo')).toEqual(['photo</w>']);
    expect(tokenizer().pieces('a photo of a cat')).toEqual(['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
  });

  it('takes the best-ranked pair first, not the leftmost: "pot" → p ot</w> (rank 7) rather than po t</w> (rank 8)', () => {
    expect(tokenizer().pieces('pot')).toEqual(['p', 'ot</w>']);
  });

  it('merges every occurrence of the chosen pair: "ototo" → ot ot o</w>', () => {
    expect(tokenizer().pieces('ototo')).toEqual(['ot', 'ot', 'o</w>']);
  });

  it('leaves words without merges as characters, the last one marked </w>: "hat" → h a t</w>', () => {
    expect(tokenizer().pieces('hat')).toEqual(['h', 'a', 't</w>']);
  });

  it('lower-cases, collapses whitespace and splits punctuation and single digits', () => {
    expect(tokenizer().pieces('  A   PHOTO,\n of a Cat 42 ')).toEqual(['a</w>', 'photo</w>', ',</w>', 'of</w>', 'a</w>', 'cat</w>', '4</w>', '2</w>']);
  });

  it('encodes UTF-8 bytes through the byte→unicode table: "é" is C3 A9 → "Ã" "©</w>"', () => {
    expect(tokenizer().pieces('é')).toEqual(['Ã', '©</w>']);
    expect(bytesToUnicode()[32]).toBe('Ġ');
    expect(bytesToUnicode()[0xc3]).toBe('Ã');
  });
});

describe('special tokens, padding and truncation', () => {
  it('wraps in start/end and pads with the end token (SD 1.x) to the max length', () => {
    const encoded = tokenizer({ maxLength: 10 }).encode('a photo of a cat');
    expect(encoded).toEqual({ ids: [18, 7, 14, 15, 7, 17, 19, 19, 19, 19], tokenCount: 5, truncated: false });
  });

  it('pads with the configured pad token (SD 2.x / OpenCLIP pads with "!")', () => {
    expect(tokenizer({ maxLength: 8, padToken: '!' }).encode('a cat').ids).toEqual([18, 7, 17, 19, 20, 20, 20, 20]);
  });

  it('truncates to max length − 2 tokens, keeps the end token, and says so', () => {
    const encoded = tokenizer({ maxLength: 5 }).encode('a photo of a cat');
    expect(encoded).toEqual({ ids: [18, 7, 14, 15, 19], tokenCount: 5, truncated: true });
  });

  it('fits a prompt to what the encoder reads: the whole words that fit, and the full count', () => {
    // "a photo of a cat" is 5 tokens; max length 5 leaves room for 3.
    expect(tokenizer({ maxLength: 5 }).fit('a photo of a cat')).toEqual({ text: 'a photo of', tokenCount: 5, truncated: true });
    expect(tokenizer({ maxLength: 7 }).fit('a photo of a cat')).toEqual({ text: 'a photo of a cat', tokenCount: 5, truncated: false });
    // What fit() keeps is exactly what encode() reads in full.
    const fitted = tokenizer({ maxLength: 5 }).fit('a photo of a cat').text;
    expect(tokenizer({ maxLength: 5 }).encode(fitted).truncated).toBe(false);
  });

  it('maps pieces missing from the vocabulary to the unknown (end) token', () => {
    expect(tokenizer({ maxLength: 4 }).encode('z').ids).toEqual([18, 19, 19, 19]);
  });

  it('an empty prompt is start, end and padding', () => {
    expect(tokenizer({ maxLength: 4 }).encode('   ').ids).toEqual([18, 19, 19, 19]);
  });

  it('gives the published ids of openai/clip-vit-base-patch32 for "a photo of a cat" when the vocabulary holds those entries', () => {
    // Reference: CLIPTokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407].
    const vocab = { ...handVocab(), 'a</w>': 320, 'photo</w>': 1125, 'of</w>': 539, 'cat</w>': 2368, '<|startoftext|>': 49406, '<|endoftext|>': 49407 };
    const encoded = new ClipTokenizer({ vocab, merges: MERGES }).encode('a photo of a cat');
    expect(encoded.ids.slice(0, 7)).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect(encoded.ids).toHaveLength(77);
    expect(new Set(encoded.ids.slice(7))).toEqual(new Set([49407]));
  });
});

describe('loading tokenizer/ from a model folder', () => {
  it('reads vocab.json, merges.txt and the pad token from special_tokens_map.json', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-tok-'));
    await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(handVocab()));
    await fs.writeFile(path.join(dir, 'merges.txt'), MERGES.join('\n'));
    await fs.writeFile(path.join(dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: { content: '!' }, eos_token: '<|endoftext|>' }));
    await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 6 }));
    const loaded = ClipTokenizer.fromDirectory(dir);
    expect(loaded.encode('a cat').ids).toEqual([18, 7, 17, 19, 20, 20]);
    await fs.rm(dir, { recursive: true });
  });

  it('names the file when vocab.json is malformed or merges.txt is missing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-tok-'));
    await fs.writeFile(path.join(dir, 'vocab.json'), '{ not json');
    expect(() => ClipTokenizer.fromDirectory(dir)).toThrow(ModelLayoutError);
    expect(() => ClipTokenizer.fromDirectory(dir)).toThrow(/vocab\.json is not valid JSON/);
    await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(handVocab()));
    expect(() => ClipTokenizer.fromDirectory(dir)).toThrow(/merges\.txt is missing/);
    await fs.rm(dir, { recursive: true });
  });
});
