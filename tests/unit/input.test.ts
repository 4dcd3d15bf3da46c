import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/services/errors.js';
import { normalizeStartInput, PROMPT_MAX_CHARS, requireUuid, STYLE_MAX_CHARS } from '../../src/services/generation/input.js';

function rejection(run: () => unknown): InvalidInputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError, but nothing was thrown');
}

describe('normalizeStartInput', () => {
  it('trims the prompt, defaults style and seed to null and the book to one page', () => {
    expect(normalizeStartInput({ prompt: '  a fox in the snow \n' })).toEqual({ prompt: 'a fox in the snow', style: null, seed: null, pageCount: 1 });
    expect(normalizeStartInput({ prompt: 'a fox', pageCount: null }).pageCount).toBe(1);
  });

  it.each([1, 6, 12])('accepts a book of %i pages', (pageCount) => {
    expect(normalizeStartInput({ prompt: 'a fox', pageCount }).pageCount).toBe(pageCount);
  });

  it.each([0, -1, 13, 2.5])('rejects a page count of %s, naming the range', (pageCount) => {
    const error = rejection(() => normalizeStartInput({ prompt: 'a fox', pageCount }));
    expect(error.message).toBe(`pageCount must be a whole number from 1 to 12; got ${pageCount}.`);
  });

  it.each(['', '   ', '\n\t  '])('rejects the empty or whitespace-only prompt %j with a readable message', (prompt) => {
    const error = rejection(() => normalizeStartInput({ prompt }));
    expect(error.message).toMatch(/prompt is empty/i);
    expect(error.message).toContain('2000');
  });

  it(`accepts a prompt of exactly ${PROMPT_MAX_CHARS} characters once trimmed`, () => {
    const prompt = 'x'.repeat(PROMPT_MAX_CHARS);
    expect(normalizeStartInput({ prompt: `   ${prompt}   ` }).prompt).toBe(prompt);
  });

  it(`rejects a prompt of ${PROMPT_MAX_CHARS + 1} characters, naming its length and the limit`, () => {
    const error = rejection(() => normalizeStartInput({ prompt: 'x'.repeat(PROMPT_MAX_CHARS + 1) }));
    expect(error.message).toContain('2001');
    expect(error.message).toContain('2000');
  });

  it('trims the style', () => {
    expect(normalizeStartInput({ prompt: 'a fox', style: '  watercolor ' }).style).toBe('watercolor');
  });

  it.each(['', '   ', null, undefined])('turns the empty style %j into null', (style) => {
    expect(normalizeStartInput({ prompt: 'a fox', style }).style).toBeNull();
  });

  it(`accepts a style of ${STYLE_MAX_CHARS} characters and rejects ${STYLE_MAX_CHARS + 1}`, () => {
    expect(normalizeStartInput({ prompt: 'a fox', style: 's'.repeat(STYLE_MAX_CHARS) }).style).toHaveLength(STYLE_MAX_CHARS);
    const error = rejection(() => normalizeStartInput({ prompt: 'a fox', style: 's'.repeat(STYLE_MAX_CHARS + 1) }));
    expect(error.message).toMatch(/style/i);
    expect(error.message).toContain('100');
  });

  it.each([0, 1, 42, 2147483647])('accepts the seed %d', (seed) => {
    expect(normalizeStartInput({ prompt: 'a fox', seed }).seed).toBe(seed);
  });

  it.each([-1, 2.5, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY])('rejects the seed %d with the allowed range', (seed) => {
    const error = rejection(() => normalizeStartInput({ prompt: 'a fox', seed }));
    expect(error.message).toMatch(/seed/i);
    expect(error.message).toContain('2147483647');
  });

  it.each([
    ['prompt', { prompt: 'a fox\u0000 in the snow' }, 'U+0000'],
    ['prompt', { prompt: 'a fox \u001b[31m red' }, 'U+001B'],
    ['style', { prompt: 'a fox', style: 'water\u0000color' }, 'U+0000'],
    ['style', { prompt: 'a fox', style: 'ink \uD800' }, 'U+D800'],
  ])('rejects a %s holding a character that cannot be stored, naming the field and the character (%j)', (field, input, character) => {
    const error = rejection(() => normalizeStartInput(input));
    expect(error.message).toBe(`The ${field} contains the control character ${character}, which cannot be stored; remove it and try again.`);
  });

  it('keeps tabs, newlines and characters outside the Basic Multilingual Plane', () => {
    expect(normalizeStartInput({ prompt: 'a fox\tin\r\nthe snow 🦊' }).prompt).toBe('a fox\tin\r\nthe snow 🦊');
  });

  it.each(['\u200B', '\u200B\u200C\u200D\uFEFF', ' \u2060 \u00AD '])('refuses a prompt of only invisible characters (%j) like an empty one', (prompt) => {
    expect(rejection(() => normalizeStartInput({ prompt })).message).toMatch(/prompt is empty/i);
  });

  it('turns a style of only invisible characters into no style', () => {
    expect(normalizeStartInput({ prompt: 'a fox', style: '\u200B\u200B' }).style).toBeNull();
  });

  it('treats a null seed as no seed', () => {
    expect(normalizeStartInput({ prompt: 'a fox', seed: null }).seed).toBeNull();
  });
});

describe('requireUuid', () => {
  const UPPER = '3F2504E0-4F89-41D3-9A0C-0305E82C3301';

  it('accepts an upper-case UUID and returns it lower-cased', () => {
    expect(requireUuid(UPPER, 'story id')).toBe(UPPER.toLowerCase());
  });

  it('returns a lower-case UUID unchanged', () => {
    const id = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
    expect(requireUuid(id, 'story id')).toBe(id);
  });

  it.each(['', 'not-a-uuid', `${UPPER}x`, ` ${UPPER}`, '3f2504e04f8941d39a0c0305e82c3301', '3f2504e0-4f89-41d3-9a0c-0305e82c330g'])(
    'rejects %j with a message naming the thing that was expected',
    (id) => {
      const error = rejection(() => requireUuid(id, 'session id'));
      expect(error.message).toContain('session id');
      expect(error.message).toMatch(/UUID/);
    },
  );

  it('quotes at most 60 characters of a long bad id', () => {
    const error = rejection(() => requireUuid('z'.repeat(500), 'story id'));
    expect(error.message).toContain('z'.repeat(60));
    expect(error.message).not.toContain('z'.repeat(61));
  });
});
