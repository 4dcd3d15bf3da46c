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

/** `text` without the characters that cannot be stored (model output is cleaned with this before it is shown or saved). */
export function removeUnstorable(text: string): string {
  return text.replace(UNSTORABLE, '');
}

/** `text` without invisible format characters; what is left is what a reader sees. */
export function removeInvisible(text: string): string {
  return text.replace(INVISIBLE, '');
}
