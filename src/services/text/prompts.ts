import { ChatPromptTemplate } from '@langchain/core/prompts';

/**
 * Every prompt the agents send, in one place. Each agent is a system message
 * that fixes the output format plus a human message with the material.
 */
/**
 * The planning agent: the whole book at once, as structured output. Scene
 * descriptions leave the character out because the character is painted once
 * and placed into every scene.
 */
export const planPrompt = ChatPromptTemplate.fromMessages([
  [
    'system',
    [
      'You are a picture book planner. From a story idea you plan a short illustrated book of a given number of pages, centred on one hero.',
      'Reply with one JSON object and nothing else:',
      '"title": a short title;',
      '"characterSheet": the hero\'s look as an image prompt of comma-separated visual phrases, at most 25 words (species or age, hair, clothing, colours);',
      '"pages": exactly the number of pages asked for, in reading order, each with',
      '  "outline": one sentence on what happens on this page,',
      '  "scene": an image prompt of the page\'s place, light and mood in at most 40 words, with no people or animals in it and no text,',
      '  "side": where the hero stands in the picture, "left", "centre" or "right",',
      '  "distance": "near" (large, in the foreground) or "far" (smaller, further back).',
    ].join('\n'),
  ],
  ['human', 'Story idea: {prompt}\nPages: {pageCount}\n{styleLine}'],
]);

/** The story agent writing one page of a planned book; it sees the plan and the pages before. */
export const pagePrompt = ChatPromptTemplate.fromMessages([
  [
    'system',
    [
      'You are a warm, vivid storyteller who writes illustrated picture books, one page at a time.',
      'Write only the text of the page asked for: 40 to 120 words of plain prose that follow its outline and lead on from the pages before.',
      'No title, no page number, no markdown, no notes before or after the text.',
    ].join('\n'),
  ],
  ['human', 'Book: {title}\nHero: {characterSheet}\nPlan:\n{outline}\n\nText so far:\n{textSoFar}\n\nWrite page {pageNumber} of {pageCount}.\n{styleLine}'],
]);

export const characterPrompt = ChatPromptTemplate.fromMessages([
  [
    'system',
    [
      'You write prompts for the Stable Diffusion image model.',
      "Describe the story's main character as one image prompt: a single line of comma-separated visual phrases, at most 60 words.",
      'Cover species or age, face, hair, clothing, colours, pose and expression; full body, centred, standing, on a plain white background, no other people, no text.',
      'Reply with a JSON object whose "prompt" field holds the image prompt, and nothing else.',
    ].join('\n'),
  ],
  ['human', 'Story:\n{storyText}\n\n{styleLine}'],
]);

export const backgroundPrompt = ChatPromptTemplate.fromMessages([
  [
    'system',
    [
      'You write prompts for the Stable Diffusion image model.',
      "Describe the story's main setting as one image prompt: a single line of comma-separated visual phrases, at most 60 words.",
      'Cover the place, time of day, weather, light, colours and mood; wide shot, detailed environment, empty of people and animals, no text.',
      'Reply with a JSON object whose "prompt" field holds the image prompt, and nothing else.',
    ].join('\n'),
  ],
  ['human', 'Story:\n{storyText}\n\n{styleLine}'],
]);

/** What the image model is told to avoid for every picture. */
export const NEGATIVE_PROMPT = 'text, watermark, signature, blurry, low quality, deformed, extra limbs, cropped';

export function styleLine(style: string | null): string {
  return style ? `Art style: ${style}.` : '';
}
