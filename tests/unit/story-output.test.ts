import { describe, expect, it } from 'vitest';
import {
  capStoryText,
  cleanTitle,
  cleanVisualPrompt,
  StoryStreamSplitter,
  stripThinking,
  TITLE_MAX_CHARS,
  titleFromPrompt,
  VISUAL_PROMPT_MAX_CHARS,
} from '../../src/services/text/story-output.js';

/** Feeds the chunks through a fresh splitter; returns every push() output, end()'s output and the result. */
function split(chunks: string[]) {
  const splitter = new StoryStreamSplitter();
  const outputs = chunks.map((chunk) => splitter.push(chunk));
  const tail = splitter.end();
  return { outputs, tail, streamed: outputs.join('') + tail, ...splitter.result() };
}

/** Cuts text into chunks at the given sizes, cycling through them. */
function chunked(text: string, sizes: number[]): string[] {
  const chunks: string[] = [];
  for (let at = 0, i = 0; at < text.length; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(text.slice(at, at + size));
    at += size;
  }
  return chunks;
}

describe('StoryStreamSplitter', () => {
  it('strips a "Title: X" line split across chunks and returns X as the title', () => {
    const { outputs, tail, title, storyText } = split(['Ti', 'tle: The Fox\n\nOnce', ' upon a time.']);
    expect(title).toBe('The Fox');
    expect(outputs).toEqual(['', 'Once', ' upon a time.']);
    expect(tail).toBe('');
    expect(storyText).toBe('Once upon a time.');
  });

  it('never streams any part of the title line, even one character at a time', () => {
    const text = 'Title: The Brave Little Fox\n\nThe fox ran.';
    const { streamed, title } = split(chunked(text, [1]));
    expect(title).toBe('The Brave Little Fox');
    expect(streamed).toBe('The fox ran.');
    expect(streamed).not.toContain('Title');
  });

  it.each([
    ['**Title:** The Fox', 'The Fox'],
    ['**Title: The Fox**', 'The Fox'],
    ['# The Fox', 'The Fox'],
    ['## Title: The Fox', 'The Fox'],
    ['title - The Fox', 'The Fox'],
    ['Title: "The Fox"', 'The Fox'],
  ])('recognises the markdown/variant title line %j', (line, expected) => {
    const { title, storyText, streamed } = split([`${line}\n\nOnce upon a time.`]);
    expect(title).toBe(expected);
    expect(storyText).toBe('Once upon a time.');
    expect(streamed).toBe('Once upon a time.');
  });

  it('emits all text and leaves the title null when the first line is not a title', () => {
    const text = 'Once upon a time there was a fox.\n\nIt ran away.';
    const { title, streamed, storyText } = split(chunked(text, [3, 7]));
    expect(title).toBeNull();
    expect(streamed).toBe(text);
    expect(storyText).toBe(text);
  });

  it('drops blank lines between the title and the story, even when they arrive in separate chunks', () => {
    const { outputs, storyText } = split(['Title: The Fox\n', '\n', '  \n', '\nOnce upon a time.']);
    expect(outputs).toEqual(['', '', '', 'Once upon a time.']);
    expect(storyText).toBe('Once upon a time.');
  });

  it('drops leading blank lines before the title line', () => {
    const { title, storyText } = split(['\n\n  Title: The Fox\nOnce.']);
    expect(title).toBe('The Fox');
    expect(storyText).toBe('Once.');
  });

  it('holds text back only until the first newline arrives', () => {
    const splitter = new StoryStreamSplitter();
    expect(splitter.push('Once upon a time')).toBe('');
    expect(splitter.push(' there was\na fox')).toBe('Once upon a time there was\na fox');
    // After the first line is known every chunk goes straight out.
    expect(splitter.push(' who ran')).toBe(' who ran');
  });

  it('holds text back only until 300 characters have arrived without a newline', () => {
    const splitter = new StoryStreamSplitter();
    const first = 'a'.repeat(299);
    expect(splitter.push(first)).toBe('');
    expect(splitter.push('b')).toBe(`${first}b`);
    expect(splitter.push('c')).toBe('c');
    expect(splitter.result().title).toBeNull();
  });

  it('releases held-back text at end() when the stream finishes without a newline', () => {
    const splitter = new StoryStreamSplitter();
    expect(splitter.push('A very short story.')).toBe('');
    expect(splitter.end()).toBe('A very short story.');
    expect(splitter.result()).toEqual({ title: null, storyText: 'A very short story.' });
  });

  it('returns the title and an empty story when the stream holds only a title line', () => {
    const { title, storyText, streamed } = split(['Title: Only a Title']);
    expect(title).toBe('Only a Title');
    expect(storyText).toBe('');
    expect(streamed).toBe('');
  });

  it('end() after the header is resolved returns nothing more', () => {
    const splitter = new StoryStreamSplitter();
    splitter.push('Title: X\nBody');
    expect(splitter.end()).toBe('');
  });

  it.each([
    ['titled', 'Title: The Fox\n\nOnce upon a time, a fox lived in a wood.\n\nThe end.  \n\n'],
    ['untitled', 'Once upon a time, a fox lived in a wood.\nIt was happy.\n\n'],
    ['heading', '\n# The Fox\n\n\nOnce upon a time.\n\nThe end.\n'],
  ])('concatenated push() outputs plus end() equal result().storyText for a %s story, however it is chunked', (_, text) => {
    for (const sizes of [[1], [2, 5], [3, 1, 8], [13], [text.length]]) {
      const { streamed, storyText } = split(chunked(text, sizes));
      expect(streamed.trimEnd()).toBe(storyText);
      expect(storyText).toBe(storyText.trimEnd());
      expect(storyText.length).toBeGreaterThan(0);
    }
  });
});

describe('cleanTitle', () => {
  it('removes markdown marks and surrounding quotes', () => {
    expect(cleanTitle('**"The Fox"**')).toBe('The Fox');
    expect(cleanTitle('`# The Fox`')).toBe('The Fox');
    expect(cleanTitle('“The Fox”')).toBe('The Fox');
  });

  it('collapses inner whitespace', () => {
    expect(cleanTitle('  The   Brave\tFox  ')).toBe('The Brave Fox');
  });

  it('returns null when nothing is left', () => {
    expect(cleanTitle('')).toBeNull();
    expect(cleanTitle(' ** "" ** ')).toBeNull();
  });

  it(`caps a long title at ${TITLE_MAX_CHARS} characters on a word boundary`, () => {
    const raw = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const title = cleanTitle(raw)!;
    expect(title.length).toBeLessThanOrEqual(TITLE_MAX_CHARS);
    expect(raw.startsWith(title)).toBe(true);
    expect(raw.charAt(title.length)).toBe(' ');
  });
});

describe('titleFromPrompt', () => {
  it('uses the first 8 words of the prompt', () => {
    expect(titleFromPrompt('a fox who learns to fly over the moon and back')).toBe('A fox who learns to fly over the');
  });

  it('capitalises the first letter and keeps the rest as written', () => {
    expect(titleFromPrompt('brave NASA fox')).toBe('Brave NASA fox');
  });

  it('removes trailing punctuation', () => {
    expect(titleFromPrompt('a brave little fox!?')).toBe('A brave little fox');
    expect(titleFromPrompt('one, two, three, four, five, six, seven, eight, nine')).toBe('One, two, three, four, five, six, seven, eight');
  });

  it('collapses whitespace and newlines between words', () => {
    expect(titleFromPrompt('  a   fox\n\nin   snow ')).toBe('A fox in snow');
  });

  it('falls back to "Untitled story" when the prompt has no words', () => {
    expect(titleFromPrompt('   ')).toBe('Untitled story');
    expect(titleFromPrompt('?!')).toBe('Untitled story');
  });
});

describe('stripThinking', () => {
  it('removes a closed <think> block and keeps the answer', () => {
    expect(stripThinking('<think>\nLet me plan.\n</think>\nTitle: X')).toBe('\nTitle: X');
  });

  it('removes every think block, case-insensitively', () => {
    expect(stripThinking('a<think>x</think>b<THINK>y</THINK>c')).toBe('abc');
  });

  it('removes an unclosed <think> block to the end of the text', () => {
    expect(stripThinking('answer <think>still thinking')).toBe('answer ');
  });

  it('leaves text without think blocks unchanged', () => {
    expect(stripThinking('just a story')).toBe('just a story');
  });
});

describe('cleanVisualPrompt', () => {
  it('removes "Here is the prompt:" style lead-in lines', () => {
    expect(cleanVisualPrompt('Here is the prompt:\na red fox, green coat')).toBe('a red fox, green coat');
    expect(cleanVisualPrompt("Sure! Here's an image prompt for the character:\n\na red fox")).toBe('a red fox');
  });

  it('removes a "Prompt:" prefix', () => {
    expect(cleanVisualPrompt('Prompt: a red fox')).toBe('a red fox');
    expect(cleanVisualPrompt('Image prompt: a red fox')).toBe('a red fox');
    expect(cleanVisualPrompt('**Prompt**: a red fox')).toBe('a red fox');
  });

  it('removes surrounding quotes and a leading bullet', () => {
    expect(cleanVisualPrompt('"a red fox in the snow"')).toBe('a red fox in the snow');
    expect(cleanVisualPrompt('“a red fox”')).toBe('a red fox');
    expect(cleanVisualPrompt('- a red fox')).toBe('a red fox');
  });

  it('joins lines with ", " and collapses whitespace and doubled commas', () => {
    expect(cleanVisualPrompt('a red fox\n  green   coat\nsnowy forest')).toBe('a red fox, green coat, snowy forest');
    expect(cleanVisualPrompt('a red fox,\ngreen coat')).toBe('a red fox, green coat');
  });

  it('strips a <think> block before cleaning', () => {
    expect(cleanVisualPrompt('<think>plan: a fox</think>\na red fox')).toBe('a red fox');
  });

  it(`caps the prompt at ${VISUAL_PROMPT_MAX_CHARS} characters on a word boundary`, () => {
    const raw = Array.from({ length: 120 }, (_, i) => `tag${i}`).join(' ');
    const cleaned = cleanVisualPrompt(raw)!;
    expect(cleaned.length).toBeLessThanOrEqual(VISUAL_PROMPT_MAX_CHARS);
    expect(cleaned.length).toBeGreaterThan(VISUAL_PROMPT_MAX_CHARS * 0.6);
    expect(raw.startsWith(cleaned)).toBe(true);
    expect(raw.charAt(cleaned.length)).toBe(' ');
  });

  it('does not leave a trailing comma when capping', () => {
    const raw = Array.from({ length: 120 }, (_, i) => `tag${i},`).join(' ');
    const cleaned = cleanVisualPrompt(raw)!;
    expect(cleaned.length).toBeLessThanOrEqual(VISUAL_PROMPT_MAX_CHARS);
    expect(cleaned).not.toMatch(/[,\s]$/);
  });

  it.each(['', '   \n  ', '...', '"" , -', 'Here is the prompt:', '<think>a fox</think>'])('returns null when nothing usable is left in %j', (raw) => {
    expect(cleanVisualPrompt(raw)).toBeNull();
  });
});

describe('capStoryText', () => {
  it('returns text within the limit unchanged', () => {
    expect(capStoryText('Short story.', 100)).toBe('Short story.');
  });

  it('cuts at the last sentence end when it is past half the limit', () => {
    const text = 'The fox ran far. The fox ran home. The fox went to sleep under the old oak tree.';
    const capped = capStoryText(text, 40);
    expect(capped).toBe('The fox ran far. The fox ran home.');
  });

  it('recognises "!", "?" and a period before a newline as sentence ends', () => {
    expect(capStoryText('Run, fox, run! Where to go? Nowhere at all today', 30)).toBe('Run, fox, run! Where to go?');
    expect(capStoryText('The fox ran home.\nThen it slept for a long while', 25)).toBe('The fox ran home.');
  });

  it('cuts on a word boundary when the only sentence end is before half the limit', () => {
    const text = 'Run. The fox ran and ran and ran through the long dark wood';
    const capped = capStoryText(text, 40);
    expect(capped.length).toBeLessThanOrEqual(40);
    expect(capped).not.toBe('Run.');
    expect(text.startsWith(capped)).toBe(true);
    expect(text.charAt(capped.length)).toBe(' ');
  });

  it('never returns more than maxChars', () => {
    const text = 'word '.repeat(500);
    for (const max of [50, 123, 999]) expect(capStoryText(text, max).length).toBeLessThanOrEqual(max);
  });
});

describe('model replies in the shapes small models like to use', () => {
  it.each([['Prompt:\na red fox'], ['**Prompt:** a red fox'], ['**Image Prompt:**\na red fox']])(
    'cleanVisualPrompt removes the "Prompt:" header from %j without leaving "*" or "," behind',
    (raw) => {
      expect(cleanVisualPrompt(raw)).toBe('a red fox');
    },
  );

  it('a leading <think> block is neither streamed nor allowed to hide the title line', () => {
    const { title, streamed, storyText } = split(['<think>\nplan the story\n</think>\n', 'Title: The Fox\n\nOnce upon a time.']);
    expect(title).toBe('The Fox');
    expect(streamed).not.toContain('plan the story');
    expect(storyText).toBe('Once upon a time.');
  });

  it('holds back a <think> block split across many chunks until it closes', () => {
    const { title, streamed } = split(['<th', 'ink>\nmuch', ' thought\n', '</thi', 'nk>\nTitle: T\n\nBody text.']);
    expect(title).toBe('T');
    expect(streamed).toBe('Body text.');
  });
});
