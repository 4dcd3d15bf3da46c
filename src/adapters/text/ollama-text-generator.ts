import { ChatOllama } from '@langchain/ollama';
import type { ChatPromptTemplate } from '@langchain/core/prompts';
import type { AppConfig } from '../../config.js';
import { backgroundPrompt, characterPrompt, storyPrompt, styleLine } from '../../services/text/prompts.js';
import { capStoryText, cleanVisualPrompt, StoryStreamSplitter, titleFromPrompt } from '../../services/text/story-output.js';
import { TextGenerationError, type DescribeRequest, type StoryDraft, type TextGenerator, type WriteStoryRequest } from '../../ports/text-generator.js';

type OllamaSettings = AppConfig['ollama'];

/** Attempts per description before the output counts as bad; small models sometimes answer with nothing. */
const DESCRIPTION_ATTEMPTS = 2;

/** The three agents, talking to Ollama through LangChain's ChatOllama. */
export class OllamaTextGenerator implements TextGenerator {
  constructor(private readonly settings: OllamaSettings) {}

  async writeStory({ prompt, style, signal, onText }: WriteStoryRequest): Promise<StoryDraft> {
    const splitter = new StoryStreamSplitter();
    const stopEarly = new AbortController();
    const chain = storyPrompt.pipe(this.chatModel(AbortSignal.any([signal, stopEarly.signal]), this.settings.storyMaxChars));
    let finished = false;
    let emitted = 0;
    const show = (text: string) => {
      if (text === '' || emitted >= this.settings.storyMaxChars) return;
      const allowed = text.slice(0, this.settings.storyMaxChars - emitted);
      emitted += allowed.length;
      onText(allowed);
    };
    await this.call('writing the story', signal, async () => {
      const stream = await chain.stream({ prompt, styleLine: styleLine(style) }, { signal });
      for await (const chunk of stream) {
        if (typeof chunk.content === 'string') show(splitter.push(chunk.content));
        // The last chunk carries Ollama's closing `done` line; a stream cut short never gets it.
        if (chunk.response_metadata?.done === true) finished = true;
        if (emitted >= this.settings.storyMaxChars) {
          finished = true;
          stopEarly.abort();
          break;
        }
      }
    });
    if (!finished) {
      throw new TextGenerationError(
        `The connection to Ollama at ${this.settings.baseUrl} ended before the story was finished (model ${this.settings.model}); check the Ollama server and try again`,
        'stream-dropped',
      );
    }
    show(splitter.end());
    const { title, storyText } = splitter.result();
    const text = capStoryText(storyText.trim(), this.settings.storyMaxChars);
    if (text.length < 20) {
      throw new TextGenerationError(`Model ${this.settings.model} returned no usable story text; try again or choose another OLLAMA_MODEL`, 'bad-output');
    }
    return { title: title ?? titleFromPrompt(prompt), storyText: text };
  }

  describeCharacter(request: DescribeRequest): Promise<string> {
    return this.describe(characterPrompt, 'describing the character', request);
  }

  describeBackground(request: DescribeRequest): Promise<string> {
    return this.describe(backgroundPrompt, 'describing the background', request);
  }

  async checkAvailable(signal?: AbortSignal): Promise<void> {
    const url = `${this.settings.baseUrl}/api/tags`;
    const response = await this.call('listing models', signal ?? new AbortController().signal, () =>
      fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(5000), ...(signal ? [signal] : [])]) }),
    );
    if (!response.ok) {
      throw new TextGenerationError(`Ollama at ${this.settings.baseUrl} answered HTTP ${response.status} to ${url}`, 'server-error');
    }
    const body = (await response.json()) as { models?: { name?: string; model?: string }[] };
    const wanted = this.settings.model.includes(':') ? this.settings.model : `${this.settings.model}:latest`;
    const names = (body.models ?? []).flatMap((model) => [model.name, model.model]).filter(Boolean);
    if (!names.includes(wanted) && !names.includes(this.settings.model)) {
      throw this.modelMissing();
    }
  }

  private async describe(prompt: ChatPromptTemplate, activity: string, { storyText, style, signal }: DescribeRequest): Promise<string> {
    const chain = prompt.pipe(this.chatModel(signal, 400));
    for (let attempt = 1; attempt <= DESCRIPTION_ATTEMPTS; attempt++) {
      const reply = await this.call(activity, signal, () => chain.invoke({ storyText, styleLine: styleLine(style) }, { signal }));
      const cleaned = cleanVisualPrompt(typeof reply.content === 'string' ? reply.content : '');
      if (cleaned) return cleaned;
    }
    throw new TextGenerationError(
      `Model ${this.settings.model} returned no usable answer while ${activity} (${DESCRIPTION_ATTEMPTS} attempts); try again or choose another OLLAMA_MODEL`,
      'bad-output',
    );
  }

  /** One ChatOllama per call: its abort() cancels every request of the instance, so instances are never shared. */
  private chatModel(signal: AbortSignal, maxChars: number): ChatOllama {
    const timeout = AbortSignal.timeout(this.settings.requestTimeoutMs);
    return new ChatOllama({
      baseUrl: this.settings.baseUrl,
      model: this.settings.model,
      temperature: this.settings.temperature,
      // ~4 characters a token, with room for the title line.
      numPredict: Math.ceil(maxChars / 3) + 64,
      fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.any([timeout, signal, ...(init?.signal ? [init.signal] : [])]) }),
    });
  }

  private modelMissing(): TextGenerationError {
    return new TextGenerationError(
      `Ollama at ${this.settings.baseUrl} does not have the model "${this.settings.model}": run \`ollama pull ${this.settings.model}\` (or set OLLAMA_MODEL to a model you have)`,
      'model-missing',
    );
  }

  /** Runs a model call and turns whatever went wrong into a TextGenerationError a user can act on. */
  private async call<T>(activity: string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw this.explain(error, activity);
    }
  }

  private explain(error: unknown, activity: string): TextGenerationError {
    if (error instanceof TextGenerationError) return error;
    const { baseUrl, model } = this.settings;
    const err = error as { name?: string; message?: string; status_code?: number; cause?: { code?: string } };
    const message = err?.message ?? String(error);
    const code = err?.cause?.code ?? (error as { code?: string })?.code;
    if (err?.name === 'TimeoutError' || (err?.name === 'AbortError' && /timeout/i.test(message))) {
      return new TextGenerationError(
        `Ollama at ${baseUrl} did not finish ${activity} within ${this.settings.requestTimeoutMs} ms (model ${model}); raise OLLAMA_REQUEST_TIMEOUT_MS or use a smaller model`,
        'timeout',
        { cause: error },
      );
    }
    if (err?.status_code === 404 || /model .* not found/i.test(message)) return this.modelMissing();
    if (typeof err?.status_code === 'number') {
      return new TextGenerationError(
        `Ollama at ${baseUrl} failed while ${activity} with model ${model} (HTTP ${err.status_code}: ${message}); check the Ollama server log`,
        'server-error',
        { cause: error },
      );
    }
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN' || (message === 'fetch failed' && !code)) {
      return new TextGenerationError(
        `Ollama is not reachable at ${baseUrl}: start it with \`ollama serve\` (or set OLLAMA_BASE_URL to where it runs)`,
        'unreachable',
        { cause: error },
      );
    }
    return new TextGenerationError(
      `The connection to Ollama at ${baseUrl} broke while ${activity} (model ${model}: ${message}); check the Ollama server and try again`,
      'stream-dropped',
      { cause: error },
    );
  }
}
