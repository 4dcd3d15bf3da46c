/**
 * ECMA-48 control sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ST`, DCS/PM/APC strings,
 * two-byte `ESC x`), C1 controls, and C0 controls other than tab and newline. Story text and
 * titles come from a language model and other users' prompts: printed raw, they could move the
 * cursor, retitle the terminal, or hide text (e.g. `\x1b[8m`).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this expression removes.
const CONTROL_SEQUENCES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][\s\S]*?(?:\x07|\x1b\\|$)|\x1b[@-Z\\-_]|\x1b|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** The text with every terminal control sequence removed; tabs and newlines are kept. */
export function withoutControlSequences(text: string): string {
  return text.replace(CONTROL_SEQUENCES, '');
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
