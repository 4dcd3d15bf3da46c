/** Validation and clean-up of what the language model returns; pure functions, unit-tested. */

export const TITLE_MAX_CHARS = 200;
export const VISUAL_PROMPT_MAX_CHARS = 400;

const TITLE_LINE = /^(?:#{1,6}\s*)?(?:\*\*|__)?\s*title\s*(?:\*\*|__)?\s*[:\-–—]\s*(.+?)\s*(?:\*\*|__)?\s*$/i;
const HEADING_LINE = /^#{1,6}\s+(.+?)\s*$/;

/**
 * Splits a streamed story into its title line and body as chunks arrive, so
 * subscribers see only the story text. Holds text back only until the first
 * line is known.
 */
export class StoryStreamSplitter {
  private pending = '';
  private headerDone = false;
  private bodyStarted = false;
  private title: string | null = null;
  private body = '';

  /** Returns the story text to show now (may be empty). */
  push(chunk: string): string {
    if (this.headerDone) return this.emit(chunk);
    this.pending += chunk;
    // A reasoning model thinks aloud first; that is never part of the story, however long.
    if (/^\s*<think>/i.test(this.pending)) {
      const close = this.pending.search(/<\/think>/i);
      if (close < 0) return '';
      this.pending = this.pending.slice(close + '</think>'.length);
    }
    const leading = this.pending.trimStart();
    if (/^<(t(h(i(nk?)?)?)?)?$/i.test(leading)) return '';
    const newline = leading.indexOf('\n');
    if (newline < 0 && leading.length < 300) return '';
    return this.resolveHeader(leading, newline);
  }

  /** Call once the stream has ended; returns any text still held back. */
  end(): string {
    if (this.headerDone) return '';
    const leading = stripThinking(this.pending).trimStart();
    return this.resolveHeader(leading, leading.indexOf('\n'));
  }

  result(): { title: string | null; storyText: string } {
    return { title: this.title, storyText: this.body.trimEnd() };
  }

  private resolveHeader(leading: string, newline: number): string {
    this.headerDone = true;
    this.pending = '';
    const firstLine = newline < 0 ? leading : leading.slice(0, newline);
    const match = TITLE_LINE.exec(firstLine.trim()) ?? HEADING_LINE.exec(firstLine.trim());
    if (!match) return this.emit(leading);
    this.title = cleanTitle(match[1]);
    return this.emit(newline < 0 ? '' : leading.slice(newline + 1));
  }

  private emit(text: string): string {
    let out = text;
    if (!this.bodyStarted) {
      out = out.trimStart();
      if (out === '') return '';
      this.bodyStarted = true;
    }
    this.body += out;
    return out;
  }
}

export function cleanTitle(raw: string): string | null {
  const title = raw
    .replace(/[*_#`]/g, '')
    .replace(/^["'“”‘’«»\s]+|["'“”‘’«»\s]+$/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (title === '') return null;
  return capAtWord(title, TITLE_MAX_CHARS);
}

/** A title for a story whose model forgot one: the first few words of the prompt. */
export function titleFromPrompt(prompt: string): string {
  const words = prompt.replace(/\s+/g, ' ').trim().split(' ').slice(0, 8).join(' ');
  const title = words.replace(/[.!?,;:]+$/, '');
  return capAtWord(title.charAt(0).toUpperCase() + title.slice(1), TITLE_MAX_CHARS) || 'Untitled story';
}

/** Removes a reasoning model's `<think>` block, which is never part of the answer. */
export function stripThinking(text: string): string {
  return text.replace(/<think>[\s\S]*?<\/think>/gi, '').replace(/<think>[\s\S]*$/i, '');
}

/**
 * Turns a description agent's reply into one clean Stable Diffusion prompt:
 * no preamble, no quotes, one line, at most VISUAL_PROMPT_MAX_CHARS. Returns
 * null when nothing usable is left.
 */
export function cleanVisualPrompt(raw: string): string | null {
  const lines = stripThinking(raw)
    .split('\n')
    .map(cleanPromptLine)
    .filter((line) => line !== '')
    // "Here is the prompt:" and similar lead-ins carry no visual content.
    .filter((line) => !/^(here('|’)?s|here is|sure|certainly|okay|ok)\b.*:$/i.test(line));
  const text = lines
    .join(', ')
    .replace(/\s+/g, ' ')
    .replace(/(,\s*){2,}/g, ', ')
    .trim();
  if (!/[a-z]/i.test(text)) return null;
  return capAtWord(text, VISUAL_PROMPT_MAX_CHARS);
}

/** One line of a reply without markdown, list bullets, quotes or a "Prompt:" label. */
function cleanPromptLine(line: string): string {
  return line
    .replace(/[*_`#]+/g, '')
    .trim()
    .replace(/^[-•]\s*/, '')
    .replace(/^(?:(?:image|visual|stable diffusion|sd)\s+)?prompt\s*:\s*/i, '')
    .replace(/^["'“”]+|["'“”]+$/g, '')
    .trim();
}

/** Caps text at a sentence end where possible, so a long story does not stop mid-word. */
export function capStoryText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  const sentenceEnd = Math.max(cut.lastIndexOf('. '), cut.lastIndexOf('! '), cut.lastIndexOf('? '), cut.lastIndexOf('.\n'));
  return sentenceEnd > maxChars * 0.5 ? cut.slice(0, sentenceEnd + 1) : capAtWord(cut, maxChars);
}

function capAtWord(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  const space = cut.lastIndexOf(' ');
  return (space > maxChars * 0.6 ? cut.slice(0, space) : cut).replace(/[\s,;:]+$/, '');
}
