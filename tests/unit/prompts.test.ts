import { describe, expect, it } from 'vitest';
import type { BaseMessage } from '@langchain/core/messages';
import { backgroundPrompt, characterPrompt, NEGATIVE_PROMPT, pagePrompt, planPrompt, styleLine } from '../../src/services/text/prompts.js';

function text(message: BaseMessage): string {
  expect(typeof message.content).toBe('string');
  return message.content as string;
}

async function format(template: typeof planPrompt, values: Record<string, string>): Promise<{ system: string; human: string }> {
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

describe('planPrompt', () => {
  it('asks for the title, a short character sheet and per page an outline, a scene without people and a placement', async () => {
    const { system } = await format(planPrompt, { prompt: 'a fox', pageCount: '4', styleLine: '' });
    for (const field of ['"title"', '"characterSheet"', '"pages"', '"outline"', '"scene"', '"side"', '"distance"']) expect(system).toContain(field);
    expect(system).toMatch(/no people/);
    expect(system).toMatch(/"left", "centre" or "right"/);
    expect(system).not.toMatch(/storyteller|main character|main setting/);
  });

  it("puts the user's prompt, the page count and the style line in the human message, braces verbatim", async () => {
    const { human, system } = await format(planPrompt, { prompt: 'a {curly} fox who learns to fly', pageCount: '6', styleLine: styleLine('watercolor') });
    expect(human).toContain('a {curly} fox who learns to fly');
    expect(human).toContain('Pages: 6');
    expect(human).toContain('Art style: watercolor.');
    expect(system).not.toContain('learns to fly');
  });

  it('refuses to format without the prompt variable', async () => {
    await expect(planPrompt.formatMessages({ pageCount: '1', styleLine: '' })).rejects.toThrow(/prompt/);
  });
});

describe('pagePrompt', () => {
  it('asks the storyteller for one page of plain prose, with the plan and the text so far in the human message', async () => {
    const { system, human } = await format(pagePrompt, {
      title: 'The Fox',
      characterSheet: 'a red fox',
      outline: '1. The fox wakes.\n2. The fox flies.',
      textSoFar: 'The fox woke.',
      pageNumber: '2',
      pageCount: '2',
      styleLine: '',
    });
    expect(system).toMatch(/storyteller/);
    expect(system).toMatch(/No title, no page number, no markdown/);
    expect(human).toContain('2. The fox flies.');
    expect(human).toContain('The fox woke.');
    expect(human).toContain('Write page 2 of 2.');
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
