import { AIMessage, HumanMessage, type AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import type { z } from 'zod';
import type { ModelServerCall, OpenModelServerCall } from '../../ports/model-server-call.js';
import { FinishReason, type ChatBackend } from '../../ports/chat-backend.js';
import { StorableTextStream } from './storable-text.js';
import { jsonSchemaOf, parseJsonAnswer, repairInstruction } from './structured-output.js';
import { TextGenerationError } from '../../ports/text-generator.js';

/**
 * Tokens added to a reply's limit once a model is seen reasoning where it
 * cannot be told not to (gpt-oss ignores `think: false`; OpenAI-compatible
 * servers have no common switch): reasoning counts against `num_predict` /
 * `max_tokens`, and without room for it the answer comes back empty.
 */
export const REASONING_ALLOWANCE_TOKENS = 4096;

export interface CompletionRequest {
  messages: BaseMessage[];
  /** What the model is doing, for messages: "writing the story". */
  activity: string;
  /** Tokens for the answer itself; reasoning room is added when the model reasons. */
  maxTokens: number;
  signal: AbortSignal;
  /** Each new piece of answer text, cleaned of characters that cannot be stored. */
  onText?: (text: string) => void;
  /** Checked after each chunk: true stops reading, and the reply counts as finished (a length cap was reached). */
  enough?: () => boolean;
  jsonSchema?: { name: string; schema: Record<string, unknown> };
}

export interface Completion {
  /** The answer text, cleaned (may still hold inline `<think>` reasoning). */
  text: string;
  /** Characters of reasoning the server sent in a field of its own. */
  reasoningChars: number;
  /** Null when reading stopped early because `enough` said so. */
  finish: FinishReason | null;
  /**
   * Chunks that carried answer text or reasoning. Ollama and OpenAI-compatible servers stream
   * one token a chunk, so this is the tokens the model generated (reasoning included), without
   * relying on usage fields that not every server sends.
   */
  tokens: number;
  /** Seconds from sending the request to the last chunk (prompt processing included). */
  seconds: number;
}

/**
 * Talks to one chat model through a ChatBackend; provider-neutral. Owns what
 * every provider shares: streaming, reading reasoning apart from the answer,
 * cleaning, timeouts and stall detection on every HTTP call, the reasoning
 * allowance, structured output with one repair attempt, and turning network
 * failures into messages a user can act on.
 */
export class ChatModelClient {
  /** Learnt on the first reply that reasons; later calls get REASONING_ALLOWANCE_TOKENS more. */
  private modelReasons = false;

  constructor(
    readonly backend: ChatBackend,
    private readonly stallTimeoutMs: number,
    private readonly openCall: OpenModelServerCall,
  ) {}

  /** Streams one reply. Throws TextGenerationError (or the signal's reason when cancelled). */
  async complete(request: CompletionRequest): Promise<Completion> {
    const { signal, activity } = request;
    const http = this.httpCall(signal);
    const model = this.backend.chatModel({ maxTokens: this.tokenLimit(request.maxTokens), fetch: http.fetch, jsonSchema: request.jsonSchema });
    let text = '';
    const storable = new StorableTextStream();
    const append = (piece: string) => {
      if (piece === '') return;
      text += piece;
      request.onText?.(piece);
    };
    let reasoningChars = 0;
    let finish: FinishReason | null = null;
    let stoppedEarly = false;
    let tokens = 0;
    const started = performance.now();
    const stopEarly = new AbortController();
    await this.call(activity, signal, http, async () => {
      const stream = await model.stream(request.messages, { signal: AbortSignal.any([signal, stopEarly.signal]) });
      for await (const chunk of stream) {
        const reading = this.backend.read(chunk as AIMessageChunk);
        if (reading.text !== '' || reading.reasoning !== '') tokens += 1;
        if (reading.reasoning !== '') {
          reasoningChars += reading.reasoning.length;
          this.modelReasons = true;
        }
        append(storable.push(reading.text));
        finish = reading.finish ?? finish;
        if (finish === null && request.enough?.()) {
          stoppedEarly = true;
          stopEarly.abort();
          break;
        }
      }
      append(storable.end());
    });
    if (/<\/think>/i.test(text)) this.modelReasons = true;
    if (finish === null && !stoppedEarly) {
      throw new TextGenerationError(
        `The connection to ${this.backend.name} at ${this.backend.baseUrl} ended before ${activity} was finished (model ${this.backend.model}); check the server and try again`,
        'stream-dropped',
      );
    }
    return { text, reasoningChars, finish, tokens, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Asks for a JSON answer matching `schema` (the server is given its JSON
   * Schema) and validates it. An answer that does not match gets one repair
   * attempt; an answer starved by reasoning gets one more try with room for it.
   * Throws TextGenerationError 'bad-output' naming the real cause.
   */
  async completeJson<T>(schema: z.ZodType<T>, request: Omit<CompletionRequest, 'jsonSchema' | 'onText' | 'enough'> & { name: string }): Promise<T> {
    const jsonSchema = { name: request.name, schema: jsonSchemaOf(schema) };
    const first = await this.complete({ ...request, jsonSchema });
    const parsed = parseJsonAnswer(first.text, schema);
    if (parsed.ok) return parsed.value;
    // Cut at the limit (reasoning it was not given room for, or reasoning inline that looks like text):
    // the same question again with room; anything else is shown its problem once.
    const cut = first.finish === FinishReason.Length;
    const messages = cut
      ? request.messages
      : [...request.messages, new AIMessage(first.text), new HumanMessage(repairInstruction(parsed.problem, jsonSchema.schema))];
    const maxTokens = cut && !this.modelReasons ? request.maxTokens + REASONING_ALLOWANCE_TOKENS : request.maxTokens;
    const second = await this.complete({ ...request, maxTokens, messages, jsonSchema });
    const repaired = parseJsonAnswer(second.text, schema);
    if (repaired.ok) return repaired.value;
    const { model, settings } = this.backend;
    if (second.finish === FinishReason.Length && (second.reasoningChars > 0 || /<\/?think>/i.test(second.text))) {
      throw new TextGenerationError(
        `Model ${model} spent its whole token limit reasoning and gave no answer while ${request.activity}; choose a model that can answer without reasoning, or one that reasons less (${settings.model})`,
        'bad-output',
      );
    }
    if (second.finish === FinishReason.Length) {
      throw new TextGenerationError(
        `Model ${model} reached its token limit before finishing its answer while ${request.activity}; try again or choose another ${settings.model}`,
        'bad-output',
      );
    }
    throw new TextGenerationError(
      `Model ${model} did not give the JSON answer asked for while ${request.activity} (twice; last: ${repaired.problem}); try again or choose another ${settings.model}`,
      'bad-output',
    );
  }

  /** Throws a TextGenerationError with an actionable message when the model cannot be used. */
  async checkAvailable(signal?: AbortSignal): Promise<void> {
    const http = this.openCall({ timeoutMs: 5000 }, signal);
    await this.call('listing models', signal ?? new AbortController().signal, http, () => this.backend.checkAvailable(http.fetch));
  }

  /** Whether this model has been seen reasoning (its replies then need room for it, and may open with it). */
  get modelIsKnownToReason(): boolean {
    return this.modelReasons;
  }

  private tokenLimit(answerTokens: number): number {
    return this.modelReasons ? answerTokens + REASONING_ALLOWANCE_TOKENS : answerTokens;
  }

  private httpCall(signal: AbortSignal): ModelServerCall {
    return this.openCall({ timeoutMs: this.backend.requestTimeoutMs, stallTimeoutMs: this.stallTimeoutMs }, signal);
  }

  /** Runs a model call and turns whatever went wrong into a TextGenerationError a user can act on. */
  private async call<T>(activity: string, signal: AbortSignal, http: ModelServerCall, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw this.explain(error, activity, http);
    }
  }

  private explain(error: unknown, activity: string, http: ModelServerCall): TextGenerationError {
    if (error instanceof TextGenerationError) return error;
    const { name, baseUrl, model, settings } = this.backend;
    const label = `${name} at ${baseUrl}`;
    if (http.stalled()) {
      return new TextGenerationError(
        `${label} stopped answering while ${activity} (model ${model}): nothing arrived for ${Math.round(this.stallTimeoutMs / 1000)} s (MODEL_STALL_TIMEOUT_MS); check that the server is not stuck, then try again`,
        'stalled',
        { cause: error },
      );
    }
    const err = error as { name?: string; message?: string; cause?: { code?: string; name?: string }; code?: string };
    const message = err?.message ?? String(error);
    if (http.timedOut() || err?.name === 'TimeoutError' || err?.cause?.name === 'TimeoutError') {
      return new TextGenerationError(
        `${label} did not finish ${activity} within ${this.backend.requestTimeoutMs} ms (model ${model}); raise ${settings.timeout} or use a smaller model`,
        'timeout',
        { cause: error },
      );
    }
    const specific = this.backend.explain(error, activity);
    if (specific) return specific;
    const code = err?.cause?.code ?? err?.code;
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EHOSTUNREACH' ||
      code === 'EAI_AGAIN' ||
      (/fetch failed|connection error/i.test(message) && !code)
    ) {
      return new TextGenerationError(
        `${name} is not reachable at ${baseUrl}: ${this.backend.startHint} (or set ${settings.baseUrl} to where it runs)`,
        'unreachable',
        {
          cause: error,
        },
      );
    }
    return new TextGenerationError(
      `The connection to ${label} broke while ${activity} (model ${model}: ${message}); check the server and try again`,
      'stream-dropped',
      { cause: error },
    );
  }
}
