import { withoutEscapeSequences } from '../client/control-sequences.js';

/**
 * C1 controls and C0 controls other than tab and newline, left once escape sequences are gone.
 * Story text and titles come from a language model and other users' prompts.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this expression removes.
const CONTROL_CHARACTERS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** The text with every terminal control sequence and control character removed; tabs and newlines are kept. */
export function withoutControlSequences(text: string): string {
  return withoutEscapeSequences(text).replace(CONTROL_CHARACTERS, '');
}

/** A stream whose every write is cleaned (stdout, which never carries our own control codes). */
export function cleanedStream<S extends { write(chunk: string, callback?: (error?: Error | null) => void): boolean }>(stream: S): S {
  return new Proxy(stream, {
    get(target, property, receiver) {
      if (property === 'write') {
        return (chunk: string, callback?: (error?: Error | null) => void) => target.write(withoutControlSequences(chunk), callback);
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
