import { describe, expect, it } from 'vitest';
import type { BaseMessage } from '@langchain/core/messages';
import { backgroundPrompt, characterPrompt, NEGATIVE_PROMPT, storyPrompt, styleLine } from '../../src/services/text/prompts.js';

function text(message: BaseMessage): string {
  expect(typeof message.content).toBe('string');
  return message.content as string;
}

async function format(template: typeof storyPrompt, values: Record<string, string>): Promise<{ system: string; human: string }> {
  const messages = await template.formatMessages(values);
  expect(messages.map((message) => message.getType())).toEqual(['system', 'human']);
  return { system: text(messages[0]), human: text(messages[1]) };
}

const STORY = 'Once upon a time a small fox named Pip lived under an old oak.\n\nOne night Pip saw the moon.';

describe('styleLine', () => {
  it('is empty when there is no style', () => {
    expect(styleLine(null)).toBe('');
    expect(styleLine('')).toBe('');
  });

  it('names the art style as a sentence when there is one', () => {
    expect(styleLine('watercolor')).toBe('Art style: watercolor.');
  });
});

describe('storyPrompt', () => {
  it('tells the model the first line must be "Title: " and then plain paragraphs', async () => {
    const { system } = await format(storyPrompt, { prompt: 'a fox', styleLine: '' });
    expect(system).toContain('the first line is "Title: "');
    expect(system).toMatch(/blank line/);
    expect(system).toMatch(/No markdown/);
  });

  it("puts the user's prompt and the style line in the human message", async () => {
    const { human, system } = await format(storyPrompt, { prompt: 'a fox who learns to fly', styleLine: styleLine('watercolor') });
    expect(human).toContain('a fox who learns to fly');
    expect(human).toContain('Art style: watercolor.');
    expect(system).not.toContain('a fox who learns to fly');
  });

  it('passes braces in the user prompt through verbatim instead of treating them as template variables', async () => {
    const { human } = await format(storyPrompt, { prompt: 'a {curly} fox', styleLine: '' });
    expect(human).toContain('a {curly} fox');
  });

  it('refuses to format without the prompt variable', async () => {
    await expect(storyPrompt.formatMessages({ styleLine: '' })).rejects.toThrow(/prompt/);
  });
});

describe('characterPrompt', () => {
  it('asks for the character full body on a plain white background, prompt as a JSON "prompt" field', async () => {
    const { system } = await format(characterPrompt, { storyText: STORY, styleLine: '' });
    expect(system).toContain('plain white background');
    expect(system).toContain('full body');
    expect(system).toMatch(/no other people/);
    expect(system).toMatch(/Reply with a JSON object whose "prompt" field holds the image prompt/);
  });

  it('carries the story text and the style line in the human message', async () => {
    const { human } = await format(characterPrompt, { storyText: STORY, styleLine: styleLine('pixel art') });
    expect(human).toContain(STORY);
    expect(human).toContain('Art style: pixel art.');
  });
});

describe('backgroundPrompt', () => {
  it('asks for the setting empty of people, prompt as a JSON "prompt" field', async () => {
    const { system } = await format(backgroundPrompt, { storyText: STORY, styleLine: '' });
    expect(system).toContain('empty of people');
    expect(system).toMatch(/setting/);
    expect(system).toMatch(/Reply with a JSON object whose "prompt" field holds the image prompt/);
    expect(system).not.toContain('plain white background');
  });

  it('carries the story text and the style line in the human message', async () => {
    const { human } = await format(backgroundPrompt, { storyText: STORY, styleLine: styleLine('oil painting') });
    expect(human).toContain(STORY);
    expect(human).toContain('Art style: oil painting.');
  });
});

describe('NEGATIVE_PROMPT', () => {
  it('keeps text and watermarks out of every picture', () => {
    expect(NEGATIVE_PROMPT).toMatch(/\btext\b/);
    expect(NEGATIVE_PROMPT).toMatch(/\bwatermark\b/);
  });
});
