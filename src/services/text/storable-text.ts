import { COMPLETE_ESCAPE_SEQUENCE_AT_START, withoutEscapeSequences } from '../../client/control-sequences.js';

/**
 * Characters a database or terminal cannot take, and characters nobody can see.
 * PostgreSQL refuses U+0000 in text columns outright; the other C0/C1 controls
 * (bar tab, line feed, carriage return), lone UTF-16 surrogates and the
 * non-characters U+FFFE/U+FFFF are stored but garble logs, terminals and JSON
 * consumers, so they are treated the same way.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is what this expression is for.
const UNSTORABLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/gu;

/**
 * Format characters that render as nothing: zero-width space/joiners, word
 * joiner, byte-order mark, soft hyphen, bidi marks and isolates.
 */
const INVISIBLE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF]/g;

/** The first character of `text` that cannot be stored, as "U+0000", or null. */
export function findUnstorable(text: string): string | null {
  UNSTORABLE.lastIndex = 0;
  const match = UNSTORABLE.exec(text);
  UNSTORABLE.lastIndex = 0;
  if (!match) return null;
  return `U+${match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * `text` without terminal escape sequences (whole) and the characters that cannot be stored: model
 * output is cleaned with this before it is shown or saved. For a streamed reply use StorableTextStream,
 * which also catches a sequence split across chunks.
 */
export function removeUnstorable(text: string): string {
  return withoutEscapeSequences(text).replace(UNSTORABLE, '');
}

/** Longest escape sequence held back waiting for its end; a longer run is not a sequence a terminal would honour. */
const MAX_PENDING_SEQUENCE_CHARS = 256;

/**
 * removeUnstorable for a stream of chunks: an escape sequence that starts in one chunk and ends in
 * a later one is held back and removed whole, instead of leaving its visible tail (`]0;title`, `[8m`).
 */
export class StorableTextStream {
  private pending = '';

  /** The chunk's storable text; may hold back a trailing, unfinished escape sequence. */
  push(chunk: string): string {
    let text = this.pending + chunk;
    this.pending = '';
    const lastEscape = text.lastIndexOf('\x1b');
    if (lastEscape !== -1 && text.length - lastEscape <= MAX_PENDING_SEQUENCE_CHARS && !COMPLETE_ESCAPE_SEQUENCE_AT_START.test(text.slice(lastEscape))) {
      this.pending = text.slice(lastEscape);
      text = text.slice(0, lastEscape);
    }
    return removeUnstorable(text);
  }

  /** Whatever was held back, cleaned (an unterminated string sequence is dropped to its end). */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    return removeUnstorable(rest);
  }
}

/** `text` without invisible format characters; what is left is what a reader sees. */
export function removeInvisible(text: string): string {
  return text.replace(INVISIBLE, '');
}
