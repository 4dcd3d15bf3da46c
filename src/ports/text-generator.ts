/** What the pipeline needs from a language model; StoryAgents implements it over any ChatBackend (Ollama, OpenAI-compatible). */
export interface StoryDraft {
  title: string;
  storyText: string;
  /** What the user should know about this text (it was cut at a limit, say); shown as session warnings. */
  warnings: string[];
}

export interface WriteStoryRequest {
  prompt: string;
  style: string | null;
  signal: AbortSignal;
  /** Called with each new piece of story text (the title line is not included). */
  onText: (delta: string) => void;
}

export interface DescribeRequest {
  storyText: string;
  style: string | null;
  signal: AbortSignal;
}

export interface TextGenerator {
  writeStory(request: WriteStoryRequest): Promise<StoryDraft>;
  describeCharacter(request: DescribeRequest): Promise<string>;
  describeBackground(request: DescribeRequest): Promise<string>;
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
