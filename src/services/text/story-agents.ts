import type { ChatPromptTemplate } from '@langchain/core/prompts';
import { z } from 'zod';
import { FinishReason } from '../../ports/chat-backend.js';
import type { ChatModelClient } from './chat-model-client.js';
import { backgroundPrompt, characterPrompt, storyPrompt, styleLine } from './prompts.js';
import {
  REASONING_HOLD_CHARS,
  capStoryText,
  cleanVisualPrompt,
  endsWithSentenceEnd,
  StoryStreamSplitter,
  titleFromPrompt,
  upToLastSentenceEnd,
  VISUAL_PROMPT_MAX_CHARS,
} from './story-output.js';
import { TextGenerationError, type DescribeRequest, type StoryDraft, type TextGenerator, type WriteStoryRequest } from '../../ports/text-generator.js';

/** The description agents answer with this object (JSON Schema through the server's structured output). */
const visualPromptAnswer = z.object({
  prompt: z
    .string()
    .min(1)
    .max(VISUAL_PROMPT_MAX_CHARS * 2),
});

/** Tokens for a description: 60 words and the JSON around them, with room to spare. */
const DESCRIPTION_TOKENS = 400;

/** Token limit for a story of `maxChars`: ~4 characters a token, with room for the title line. */
function storyTokenLimit(maxChars: number): number {
  return Math.ceil(maxChars / 3) + 64;
}

/**
 * The three agents (story, character, background) over any chat model. The
 * story streams through the tolerant splitter; the descriptions, which no
 * reader watches, use structured output.
 */
export class StoryAgents implements TextGenerator {
  constructor(
    private readonly client: ChatModelClient,
    private readonly storyMaxChars: number,
  ) {}

  async writeStory({ prompt, style, signal, onText }: WriteStoryRequest): Promise<StoryDraft> {
    const max = this.storyMaxChars;
    // A model seen reasoning may open with reasoning ended by a bare </think>: hold untitled text until it is clear.
    const splitter = new StoryStreamSplitter(this.client.modelIsKnownToReason ? Number.POSITIVE_INFINITY : REASONING_HOLD_CHARS);
    let emitted = 0;
    const show = (text: string) => {
      if (text === '' || emitted >= max) return;
      const allowed = text.slice(0, max - emitted);
      emitted += allowed.length;
      onText(allowed);
    };
    const completion = await this.client.complete({
      messages: await storyPrompt.formatMessages({ prompt, styleLine: styleLine(style) }),
      activity: 'writing the story',
      maxTokens: storyTokenLimit(max),
      signal,
      onText: (piece) => show(splitter.push(piece)),
      enough: () => emitted >= max,
    });
    show(splitter.end());
    const { title, storyText } = splitter.result();
    const warnings: string[] = [];
    let text = storyText.trim();
    const { model, settings } = this.client.backend;
    if (completion.finish === null || text.length > max) {
      text = capStoryText(text, max);
      warnings.push(`The story reached STORY_MAX_CHARS (${max} characters) and was cut after its last full sentence.`);
    } else if (completion.finish === FinishReason.Length && !endsWithSentenceEnd(text)) {
      const whole = upToLastSentenceEnd(text);
      text = whole.length >= 20 ? whole : text;
      const why = completion.reasoningChars > 0 ? `model ${model} spent part of its token limit reasoning and` : `model ${model}`;
      warnings.push(`The story was cut short: the ${why} stopped at its token limit mid-sentence, so the story ends at its last full sentence.`);
    }
    if (text.length < 20) {
      const reasoningOnly = completion.finish === FinishReason.Length && completion.reasoningChars > 0;
      throw new TextGenerationError(
        reasoningOnly
          ? `Model ${model} spent its whole token limit reasoning and wrote no story; choose a model that can answer without reasoning (${settings.model}) or raise STORY_MAX_CHARS`
          : `Model ${model} returned no usable story text; try again or choose another ${settings.model}`,
        'bad-output',
      );
    }
    return { title: title ?? titleFromPrompt(prompt), storyText: text, warnings };
  }

  describeCharacter(request: DescribeRequest): Promise<string> {
    return this.describe(characterPrompt, 'describing the character', request);
  }

  describeBackground(request: DescribeRequest): Promise<string> {
    return this.describe(backgroundPrompt, 'describing the background', request);
  }

  checkAvailable(signal?: AbortSignal): Promise<void> {
    return this.client.checkAvailable(signal);
  }

  private async describe(prompt: ChatPromptTemplate, activity: string, { storyText, style, signal }: DescribeRequest): Promise<string> {
    const answer = await this.client.completeJson(visualPromptAnswer, {
      name: 'image_prompt',
      messages: await prompt.formatMessages({ storyText, styleLine: styleLine(style) }),
      activity,
      maxTokens: DESCRIPTION_TOKENS,
      signal,
    });
    const cleaned = cleanVisualPrompt(answer.prompt);
    if (!cleaned) {
      const { model, settings } = this.client.backend;
      throw new TextGenerationError(
        `Model ${model} returned no usable image prompt while ${activity}; try again or choose another ${settings.model}`,
        'bad-output',
      );
    }
    return cleaned;
  }
}
