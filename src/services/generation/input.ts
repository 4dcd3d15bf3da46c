import { InvalidInputError } from '../errors.js';
import { findUnstorable, removeInvisible } from '../text/storable-text.js';

export const PROMPT_MAX_CHARS = 2000;
export const STYLE_MAX_CHARS = 100;
const MAX_SEED = 2 ** 31 - 1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const MAX_PAGES = 12;
const PAGE_TEXT_MAX_CHARS = 4000;

export interface StartInput {
  prompt: string;
  style?: string | null;
  seed?: number | null;
  /** Pages in the book; 1 when left out or null. */
  pageCount?: number | null;
}

export interface NormalizedStartInput {
  prompt: string;
  style: string | null;
  seed: number | null;
  pageCount: number;
}

export function normalizeStartInput(input: StartInput): NormalizedStartInput {
  refuseUnstorable(input.prompt, 'prompt');
  if (input.style) refuseUnstorable(input.style, 'style');
  const prompt = input.prompt.trim();
  // Zero-width spaces and the like make a prompt look filled in to a database and empty to a reader.
  if (removeInvisible(prompt).trim().length === 0) throw new InvalidInputError('The prompt is empty: describe the story you want in 1 to 2000 characters.');
  if (prompt.length > PROMPT_MAX_CHARS) {
    throw new InvalidInputError(`The prompt is ${prompt.length} characters long; the limit is ${PROMPT_MAX_CHARS}.`);
  }
  const style = input.style && removeInvisible(input.style).trim() ? input.style.trim() : null;
  if (style && style.length > STYLE_MAX_CHARS) {
    throw new InvalidInputError(`The style is ${style.length} characters long; the limit is ${STYLE_MAX_CHARS}.`);
  }
  const seed = normalizeSeed(input.seed);
  const pageCount = input.pageCount ?? 1;
  if (!Number.isInteger(pageCount) || pageCount < 1 || pageCount > MAX_PAGES) {
    throw new InvalidInputError(`pageCount must be a whole number from 1 to ${MAX_PAGES}; got ${pageCount}.`);
  }
  return { prompt, style, seed, pageCount };
}

/** A seed as asked for: null for a new random one; throws InvalidInputError outside 0..2^31-1. */
export function normalizeSeed(value: number | null | undefined): number | null {
  const seed = value ?? null;
  if (seed !== null && (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED)) {
    throw new InvalidInputError(`The seed must be a whole number from 0 to ${MAX_SEED}.`);
  }
  return seed;
}

/** A page's new text, trimmed: 1 to PAGE_TEXT_MAX_CHARS characters, none PostgreSQL refuses; otherwise InvalidInputError. */
export function normalizePageText(text: string): string {
  const found = findUnstorable(text);
  if (found) throw new InvalidInputError(`The text contains the control character ${found}, which cannot be stored; remove it and try again.`);
  const trimmed = text.trim();
  if (removeInvisible(trimmed).trim().length === 0) throw new InvalidInputError(`The page text is empty: write 1 to ${PAGE_TEXT_MAX_CHARS} characters.`);
  if (trimmed.length > PAGE_TEXT_MAX_CHARS) {
    throw new InvalidInputError(`The page text is ${trimmed.length} characters long; the limit is ${PAGE_TEXT_MAX_CHARS}.`);
  }
  return trimmed;
}

/** A 0-based page index of a story with `pageCount` pages; otherwise InvalidInputError. */
export function requirePageIndex(pageIndex: number, pageCount: number): number {
  if (!Number.isInteger(pageIndex) || pageIndex < 0 || pageIndex >= pageCount) {
    throw new InvalidInputError(
      `pageIndex must be a whole number from 0 to ${pageCount - 1} (the story has ${pageCount} pages, counted from 0); got ${pageIndex}.`,
    );
  }
  return pageIndex;
}

/** Characters PostgreSQL refuses (U+0000) or that garble what shows them are the caller's to remove, not ours to guess about. */
function refuseUnstorable(value: string, field: 'prompt' | 'style'): void {
  const found = findUnstorable(value);
  if (found) {
    throw new InvalidInputError(`The ${field} contains the control character ${found}, which cannot be stored; remove it and try again.`);
  }
}

export function requireUuid(id: string, what: string): string {
  if (!UUID.test(id)) throw new InvalidInputError(`"${id.slice(0, 60)}" is not a valid ${what}: expected a UUID.`);
  return id.toLowerCase();
}
