import type { CharacterDistance, CharacterSide } from '../entities/index.js';

/** What the pipeline needs from a language model; StoryAgents implements it over any ChatBackend (Ollama, OpenAI-compatible). */

/** What a visual description is of: the character alone on a plain background, or a scene without people. */
export enum VisualSubject {
  CHARACTER = 'character',
  SCENE = 'scene',
}

interface PlannedPage {
  /** One sentence on what happens on the page. */
  outline: string;
  /** An image prompt of the page's scene, without the character. */
  sceneDescription: string;
  characterSide: CharacterSide;
  characterDistance: CharacterDistance;
}

export interface BookPlan {
  title: string;
  /** The character's look as an image prompt, short enough (≈ 40 CLIP tokens) to lead every picture prompt. */
  characterSheet: string;
  /** Exactly the number of pages asked for, in reading order. */
  pages: PlannedPage[];
}

export interface PlanRequest {
  prompt: string;
  style: string | null;
  /** 1..12. */
  pageCount: number;
  signal: AbortSignal;
}

export interface WritePageRequest {
  plan: BookPlan;
  /** 0-based index of the page to write. */
  index: number;
  /** The text of pages 0..index-1, already written. */
  textsBefore: string[];
  style: string | null;
  signal: AbortSignal;
  /** Called with each new piece of the page's text. */
  onText: (delta: string) => void;
}

export interface PageDraft {
  text: string;
  /** Why the text was cut short (at STORY_MAX_CHARS or the token limit), in words; shown as session warnings with the code TEXT_CUT. */
  warnings: string[];
  /** How the model streamed the page, for the tokens-per-second metric; absent where the generator cannot tell. */
  streamed?: { tokens: number; seconds: number };
}

export interface DescribeRequest {
  /** The text the description is drawn from: the story for the character, a page for its scene. */
  text: string;
  style: string | null;
  signal: AbortSignal;
}

export interface TextGenerator {
  /** Plans a book; throws TextGenerationError 'bad-output' when the model gives no usable plan after one repair attempt. */
  planBook(request: PlanRequest): Promise<BookPlan>;
  writePage(request: WritePageRequest): Promise<PageDraft>;
  /** An image prompt of `subject`, drawn from the text given (for stories saved before books, which have no plan). */
  describe(subject: VisualSubject, request: DescribeRequest): Promise<string>;
  /** Throws a TextGenerationError with an actionable message when the model cannot be used. */
  checkAvailable(signal?: AbortSignal): Promise<void>;
}

export type TextGenerationFailure =
  | 'unreachable'
  | 'model-missing'
  | 'server-error'
  | 'stream-dropped'
  | 'bad-output'
  | 'timeout'
  /** Accepted the request, then sent nothing for MODEL_STALL_TIMEOUT_MS; not retried, so a hung server does not hold a slot again. */
  | 'stalled';

export class TextGenerationError extends Error {
  override name = 'TextGenerationError';
  constructor(
    message: string,
    readonly failure: TextGenerationFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Worth retrying later: the model server may come back. */
  get transient(): boolean {
    return this.failure === 'unreachable' || this.failure === 'timeout' || this.failure === 'stream-dropped' || this.failure === 'server-error';
  }
}

/** One generation's text generator, held from its first model call to its last, so a book never changes backend half-way. */
export interface TextGeneratorLease {
  /** The backend it runs on (ollama, embedded, openai), for logs. */
  backend: string;
  text: TextGenerator;
  /**
   * True when the backend had its model as the generation started, so a story-model download
   * running meanwhile (one for the other backend) is not waited for; absent when unknown
   * (TEXT_BACKEND set), and then a running download is waited for.
   */
  modelPresent?: boolean;
  /** The generation is over (whatever its end); a second call does nothing. */
  release(): void;
}

/** Hands each generation the text generator it uses: always the same with TEXT_BACKEND set; unset, the one chosen as it starts. */
export interface TextGenerators {
  /** Never throws. */
  forGeneration(): Promise<TextGeneratorLease>;
}
