/** Validation and clean-up of what the language model returns; pure functions, unit-tested. */

export const TITLE_MAX_CHARS = 200;
export const VISUAL_PROMPT_MAX_CHARS = 400;

/** "Title" as models write it in the languages they answer in; the label is dropped, the rest is the title. */
const TITLE_LABEL =
  '(?:title|titel|t[íi]tulo|titre|titolo|tytu[łl]|n[áa]zev|c[íi]m|ba[şs]l[ıi]k|judul|ti[êe]u ?đ[ềe]|название|заголовок|назва|τίτλος|כותרת|عنوان|शीर्षक|タイトル|題名|标题|標題|题目|題目|제목)';
const TITLE_LINE = new RegExp(
  `^(?:#{1,6}\\s*)?(?:\\*\\*|__)?\\s*${TITLE_LABEL}\\s*(?:\\*\\*|__)?\\s*[:：\\-–—]\\s*(?:\\*\\*|__)?\\s*(.+?)\\s*(?:\\*\\*|__)?\\s*$`,
  'iu',
);
const HEADING_LINE = /^#{1,6}\s+(.+?)\s*$/;
/** A code fence line (``` or ```text): the answer was wrapped in markdown. */
const FENCE_LINE = /^\s*```[\w-]*\s*$/;
/** Chatter before the story: "Sure! Here is your story:", "Certainly!", a line ending in a colon. */
const LEAD_IN_LINE =
  /^(?:(?:sure|certainly|of course|absolutely|okay|ok|great)\b[\s\S]*|here(?:'|’)?s\b[\s\S]*|here is\b[\s\S]*|below is\b[\s\S]*|[^.!?]{0,118}:)$/i;
const LEAD_IN_MAX_CHARS = 160;
const THINK_CLOSE = /<\/think>/i;

/**
 * An untitled first line may be a reasoning model thinking aloud before a bare
 * `</think>` (its template opened the tag in the prompt). Up to this many
 * characters are held back waiting for that tag, so reasoning is not shown.
 */
export const REASONING_HOLD_CHARS = 1200;

/**
 * Splits a streamed story into its title line and body as chunks arrive, so
 * subscribers see only the story text. Holds text back until the first line
 * is known to be a title, or (untitled) until REASONING_HOLD_CHARS have come
 * without a `</think>`. Drops reasoning (`<think>…</think>`, or everything
 * before a bare `</think>`), lead-in chatter and code fences.
 */
export class StoryStreamSplitter {
  private pending = '';
  private headerDone = false;
  private bodyStarted = false;
  private title: string | null = null;
  private body = '';
  /** Body text at a line start that may be a code fence, held until its line ends. */
  private heldLine = '';
  private atLineStart = true;

  /** `holdChars`: how much untitled text to hold back for a `</think>`; unlimited for a model known to reason. */
  constructor(private readonly holdChars = REASONING_HOLD_CHARS) {}

  /** Returns the story text to show now (may be empty). */
  push(chunk: string): string {
    if (this.headerDone) return this.emitBody(chunk);
    this.pending += chunk;
    return this.resolve(false);
  }

  /** Call once the stream has ended; returns any text still held back. */
  end(): string {
    let out = this.headerDone ? '' : this.resolve(true);
    if (this.heldLine !== '' && !FENCE_LINE.test(this.heldLine)) out += this.emitText(this.heldLine);
    this.heldLine = '';
    return out;
  }

  result(): { title: string | null; storyText: string } {
    // A `</think>` after the body started: what came before was reasoning (subscribers get the saved text instead).
    const close = this.body.toLowerCase().lastIndexOf('</think>');
    if (close >= 0) {
      const answer = new StoryStreamSplitter();
      answer.push(this.body.slice(close + '</think>'.length));
      answer.end();
      const { title, storyText } = answer.result();
      return { title: title ?? this.title, storyText };
    }
    return { title: this.title, storyText: this.body.trimEnd() };
  }

  private resolve(ended: boolean): string {
    for (;;) {
      // A reasoning model thinks aloud first; that is never part of the story, however long.
      if (/^\s*<think>/i.test(this.pending)) {
        const close = this.pending.search(THINK_CLOSE);
        if (close < 0) {
          if (!ended) return '';
          this.pending = '';
        } else {
          this.pending = this.pending.slice(close + '</think>'.length);
          continue;
        }
      }
      const bareClose = this.pending.search(THINK_CLOSE);
      if (bareClose >= 0) {
        this.pending = this.pending.slice(bareClose + '</think>'.length);
        continue;
      }
      const leading = this.pending.trimStart();
      if (!ended && /^<(t(h(i(nk?)?)?)?)?$/i.test(leading)) return '';
      // A partial "</think>" at the end may complete with the next chunk.
      if (!ended && /<\/?t?h?i?n?k?$/i.test(leading.slice(-8)) && leading.length < this.holdChars) return '';
      const newline = leading.indexOf('\n');
      if (newline < 0 && !ended && leading.length < 300) return '';
      const firstLine = (newline < 0 ? leading : leading.slice(0, newline)).trim();
      const match = TITLE_LINE.exec(firstLine) ?? HEADING_LINE.exec(firstLine);
      if (match) {
        this.title = cleanTitle(match[1]);
        return this.startBody(newline < 0 ? '' : leading.slice(newline + 1));
      }
      const chatter = FENCE_LINE.test(firstLine) || (firstLine.length <= LEAD_IN_MAX_CHARS && LEAD_IN_LINE.test(firstLine));
      if (chatter && (newline >= 0 || ended)) {
        this.pending = newline < 0 ? '' : leading.slice(newline + 1);
        if (this.pending === '' && !ended) return '';
        if (this.pending === '') return this.startBody('');
        continue;
      }
      if (!ended && leading.length < this.holdChars) return '';
      return this.startBody(leading);
    }
  }

  private startBody(text: string): string {
    this.headerDone = true;
    this.pending = '';
    return this.emitBody(text);
  }

  /** Passes body text on line by line enough to drop code fence lines. */
  private emitBody(text: string): string {
    let rest = this.heldLine + text;
    this.heldLine = '';
    let out = '';
    while (rest !== '') {
      const newline = rest.indexOf('\n');
      const line = newline < 0 ? rest : rest.slice(0, newline);
      if (this.atLineStart && line.trimStart().startsWith('`')) {
        if (newline < 0) {
          this.heldLine = rest;
          break;
        }
        if (FENCE_LINE.test(line)) {
          rest = rest.slice(newline + 1);
          continue;
        }
      }
      if (newline < 0) {
        out += this.emitText(rest);
        this.atLineStart = false;
        break;
      }
      out += this.emitText(rest.slice(0, newline + 1));
      rest = rest.slice(newline + 1);
      this.atLineStart = true;
    }
    return out;
  }

  private emitText(text: string): string {
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

/**
 * Removes a reasoning model's `<think>` block, which is never part of the
 * answer; a bare `</think>` (the template opened the tag) ends reasoning that
 * started with the reply.
 */
export function stripThinking(text: string): string {
  const paired = text.replace(/<think>[\s\S]*?<\/think>/gi, '').replace(/<think>[\s\S]*$/i, '');
  const bare = paired.toLowerCase().lastIndexOf('</think>');
  return bare >= 0 ? paired.slice(bare + '</think>'.length) : paired;
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

/** Punctuation that ends a sentence in the scripts models write, optionally followed by closing quotes or brackets. */
const SENTENCE_END = /[.!?。！？…‼⁇؟।॥።]["'”’»)\]」』）]*\s*$/u;

/** `text` as sentences (Intl.Segmenter, so every script's sentence ends count), each with whether it is finished. */
function sentences(text: string): { text: string; complete: boolean }[] {
  const segmenter = new Intl.Segmenter('und', { granularity: 'sentence' });
  return [...segmenter.segment(text)].map(({ segment }) => ({ text: segment, complete: SENTENCE_END.test(segment) }));
}

/**
 * The longest run of whole sentences from the start of `text` that fits in
 * `maxChars` (default: all of it), trimmed; '' when the first sentence is
 * unfinished or too long. A story cut at the token limit ends here, not mid-sentence.
 */
export function upToLastSentenceEnd(text: string, maxChars = Number.POSITIVE_INFINITY): string {
  let kept = '';
  let length = 0;
  for (const sentence of sentences(text)) {
    if (length + sentence.text.trimEnd().length > maxChars) break;
    length += sentence.text.length;
    if (!sentence.complete) break;
    kept += sentence.text;
  }
  return kept.trimEnd();
}

/** Whether `text` ends at the end of a sentence. */
export function endsWithSentenceEnd(text: string): boolean {
  return SENTENCE_END.test(text.trimEnd());
}

/** Caps text at a sentence end where possible, so a long story does not stop mid-word. */
export function capStoryText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const whole = upToLastSentenceEnd(text, maxChars);
  return whole.length > maxChars * 0.5 ? whole : capAtWord(text.slice(0, maxChars), maxChars);
}

function capAtWord(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  const space = cut.lastIndexOf(' ');
  return (space > maxChars * 0.6 ? cut.slice(0, space) : cut).replace(/[\s,;:]+$/, '');
}
