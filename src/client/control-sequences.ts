/**
 * ECMA-48 control sequences: CSI `ESC [ … final`, OSC/DCS/SOS/PM/APC strings `ESC ] … BEL|ST`
 * (an unterminated one runs to the end of the text), and two-byte `ESC x` (x not one that opens a CSI or string sequence). Printed raw they move
 * the cursor, retitle the terminal or hide text (`ESC [8m`). Shared by the server, which removes
 * them from model output, and the CLI, which removes them from whatever it prints.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control sequences are what this expression matches.
const ESCAPE_SEQUENCE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][\s\S]*?(?:\x07|\x1b\\|$)|\x1b[0-OQ-WYZ\\`-~]/g;

/** A whole escape sequence at the start of the text; a string sequence only with its terminator (for streams). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control sequences are what this expression matches.
export const COMPLETE_ESCAPE_SEQUENCE_AT_START = /^\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][\s\S]*?(?:\x07|\x1b\\)|[0-OQ-WYZ\\`-~])/;

/** The text without ECMA-48 escape sequences (whole, not just their ESC byte). */
export function withoutEscapeSequences(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, '');
}
