import { ChatPromptTemplate } from '@langchain/core/prompts';

/**
 * Every prompt the agents send, in one place. Each agent is a system message
 * that fixes the output format plus a human message with the material.
 */
export const storyPrompt = ChatPromptTemplate.fromMessages([
  [
    'system',
    [
      'You are a warm, vivid storyteller who writes short illustrated stories.',
      'Write one complete story of 250 to 450 words with a clear beginning, middle and end, centred on one main character in one memorable place.',
      'Format: the first line is "Title: " followed by a short title; then a blank line; then the story as plain paragraphs.',
      'No markdown, no headings, no notes before or after the story.',
    ].join('\n'),
  ],
  ['human', 'Story idea: {prompt}\n{styleLine}'],
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
