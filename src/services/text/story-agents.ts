import type { ChatPromptTemplate } from '@langchain/core/prompts';
import { z } from 'zod';
import { FinishReason } from '../../ports/chat-backend.js';
import type { ChatModelClient } from './chat-model-client.js';
import { CharacterDistance, CharacterSide } from '../../entities/index.js';
import { fitClipTokens } from './clip-tokens.js';
import { backgroundPrompt, characterPrompt, pagePrompt, planPrompt, styleLine } from './prompts.js';
import {
  REASONING_HOLD_CHARS,
  capStoryText,
  cleanVisualPrompt,
  endsWithSentenceEnd,
  StoryStreamSplitter,
  TITLE_MAX_CHARS,
  titleFromPrompt,
  upToLastSentenceEnd,
  VISUAL_PROMPT_MAX_CHARS,
} from './story-output.js';
import {
  TextGenerationError,
  VisualSubject,
  type BookPlan,
  type DescribeRequest,
  type PageDraft,
  type PlanRequest,
  type TextGenerator,
  type WritePageRequest,
} from '../../ports/text-generator.js';

/** The description agents answer with this object (JSON Schema through the server's structured output). */
const visualPromptAnswer = z.object({
  prompt: z
    .string()
    .min(1)
    .max(VISUAL_PROMPT_MAX_CHARS * 2),
});

/** Tokens for a description: 60 words and the JSON around them, with room to spare. */
const DESCRIPTION_TOKENS = 400;

/**
 * The character sheet leads every picture prompt; CLIP reads 75 tokens, so
 * ~40 leave room for the scene or pose and the style after it.
 */
const CHARACTER_SHEET_MAX_CLIP_TOKENS = 40;

/** A page is told 40–120 words; this many characters at least, whatever STORY_MAX_CHARS divided by the pages gives. */
const PAGE_MIN_CHARS = 400;

/** Token limit for a story of `maxChars`: ~4 characters a token, with room for the title line. */
function storyTokenLimit(maxChars: number): number {
  return Math.ceil(maxChars / 3) + 64;
}

/** The planning agent answers with this object, for exactly `pageCount` pages (JSON Schema minItems = maxItems). */
function bookPlanAnswer(pageCount: number) {
  return z.object({
    title: z.string().min(1).max(TITLE_MAX_CHARS),
    characterSheet: z.string().min(1).max(VISUAL_PROMPT_MAX_CHARS),
    pages: z
      .array(
        z.object({
          outline: z.string().min(1).max(1000),
          scene: z
            .string()
            .min(1)
            .max(VISUAL_PROMPT_MAX_CHARS * 2),
          side: z.enum([CharacterSide.LEFT, CharacterSide.CENTRE, CharacterSide.RIGHT]),
          distance: z.enum([CharacterDistance.NEAR, CharacterDistance.FAR]),
        }),
      )
      .length(pageCount),
  });
}

/** Tokens for a plan: ~120 per page of JSON, with room for the title and the sheet. */
function planTokenLimit(pageCount: number): number {
  return 300 + 160 * pageCount;
}

/** Which system prompt describes which subject. */
const DESCRIBERS: Record<VisualSubject, { prompt: ChatPromptTemplate; activity: string }> = {
  [VisualSubject.CHARACTER]: { prompt: characterPrompt, activity: 'describing the character' },
  [VisualSubject.SCENE]: { prompt: backgroundPrompt, activity: 'describing the scene' },
};

/**
 * The agents over any chat model: the planner (structured output), the story
 * agent writing one page at a time (streamed through the tolerant splitter),
 * and the describing agent (structured output) for stories without a plan.
 */
export class StoryAgents implements TextGenerator {
  constructor(
    private readonly client: ChatModelClient,
    private readonly storyMaxChars: number,
  ) {}

  async planBook({ prompt, style, pageCount, signal }: PlanRequest): Promise<BookPlan> {
    const answer = await this.client.completeJson(bookPlanAnswer(pageCount), {
      name: 'book_plan',
      messages: await planPrompt.formatMessages({ prompt, pageCount: String(pageCount), styleLine: styleLine(style) }),
      activity: 'planning the book',
      maxTokens: planTokenLimit(pageCount),
      signal,
    });
    const { model, settings } = this.client.backend;
    const unusable = () =>
      new TextGenerationError(
        `Model ${model} planned the book without usable picture descriptions; try again or choose another ${settings.model}`,
        'bad-output',
      );
    const characterSheet = cleanVisualPrompt(answer.characterSheet);
    if (!characterSheet) throw unusable();
    const pages = answer.pages.map((page) => {
      const sceneDescription = cleanVisualPrompt(page.scene);
      if (!sceneDescription) throw unusable();
      return { outline: page.outline.trim(), sceneDescription, characterSide: page.side, characterDistance: page.distance };
    });
    const title = answer.title.replace(/\s+/g, ' ').trim() || titleFromPrompt(prompt);
    return { title, characterSheet: fitClipTokens(characterSheet, CHARACTER_SHEET_MAX_CLIP_TOKENS), pages };
  }

  async writePage({ plan, index, textsBefore, style, signal, onText }: WritePageRequest): Promise<PageDraft> {
    const pageCount = plan.pages.length;
    const max = pageCount === 1 ? this.storyMaxChars : Math.max(PAGE_MIN_CHARS, Math.floor(this.storyMaxChars / pageCount));
    // A model seen reasoning may open with reasoning ended by a bare </think>: hold untitled text until it is clear.
    const splitter = new StoryStreamSplitter(this.client.modelIsKnownToReason ? Number.POSITIVE_INFINITY : REASONING_HOLD_CHARS);
    let emitted = 0;
    const show = (text: string) => {
      if (text === '' || emitted >= max) return;
      const allowed = text.slice(0, max - emitted);
      emitted += allowed.length;
      onText(allowed);
    };
    const activity = pageCount === 1 ? 'writing the story' : `writing page ${index + 1} of ${pageCount}`;
    const completion = await this.client.complete({
      messages: await pagePrompt.formatMessages({
        title: plan.title,
        characterSheet: plan.characterSheet,
        outline: plan.pages.map((page, number) => `${number + 1}. ${page.outline}`).join('\n'),
        textSoFar: textsBefore.join('\n\n') || '(this is the first page)',
        pageNumber: String(index + 1),
        pageCount: String(pageCount),
        styleLine: styleLine(style),
      }),
      activity,
      maxTokens: storyTokenLimit(max),
      signal,
      onText: (piece) => show(splitter.push(piece)),
      enough: () => emitted >= max,
    });
    show(splitter.end());
    // A title line the model added anyway is dropped: the book has its title from the plan.
    const { storyText } = splitter.result();
    const warnings: string[] = [];
    let text = storyText.trim();
    const { model, settings } = this.client.backend;
    if (completion.finish === null || text.length > max) {
      text = capStoryText(text, max);
      warnings.push(
        pageCount === 1
          ? `The story reached STORY_MAX_CHARS (${max} characters) and was cut after its last full sentence.`
          : `Page ${index + 1} reached its share of STORY_MAX_CHARS (${max} characters) and was cut after its last full sentence.`,
      );
    } else if (completion.finish === FinishReason.Length && !endsWithSentenceEnd(text)) {
      const whole = upToLastSentenceEnd(text);
      text = whole.length >= 20 ? whole : text;
      const why = completion.reasoningChars > 0 ? `model ${model} spent part of its token limit reasoning and` : `model ${model}`;
      warnings.push(
        `${pageCount === 1 ? 'The story' : `Page ${index + 1}`} was cut short: the ${why} stopped at its token limit mid-sentence, so the story ends at its last full sentence.`,
      );
    }
    if (text.length < 20) {
      const reasoningOnly = completion.finish === FinishReason.Length && completion.reasoningChars > 0;
      throw new TextGenerationError(
        reasoningOnly
          ? `Model ${model} spent its whole token limit reasoning and wrote no text while ${activity}; choose a model that can answer without reasoning (${settings.model}) or raise STORY_MAX_CHARS`
          : `Model ${model} returned no usable text while ${activity}; try again or choose another ${settings.model}`,
        'bad-output',
      );
    }
    return { text, warnings, streamed: { tokens: completion.tokens, seconds: completion.seconds } };
  }

  describe(subject: VisualSubject, request: DescribeRequest): Promise<string> {
    const { prompt, activity } = DESCRIBERS[subject];
    return this.describeWith(prompt, activity, request);
  }

  checkAvailable(signal?: AbortSignal): Promise<void> {
    return this.client.checkAvailable(signal);
  }

  private async describeWith(prompt: ChatPromptTemplate, activity: string, { text: storyText, style, signal }: DescribeRequest): Promise<string> {
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
