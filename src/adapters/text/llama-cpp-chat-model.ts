import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { BaseChatModel, type BaseChatModelCallOptions } from '@langchain/core/language_models/chat_models';
import { AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatResult } from '@langchain/core/outputs';
import { type ChatHistoryItem, LlamaChat } from 'node-llama-cpp';
import type { LlamaCppRuntime } from './llama-cpp-runtime.js';

/** How a reply ended, in `response_metadata.finish_reason` of the last chunk (OpenAI's terms). */
export enum LlamaFinishReason {
  /** The model ended its turn, or the JSON grammar was complete. */
  Stop = 'stop',
  /** `maxTokens` reached. */
  Length = 'length',
}

export interface LlamaCppChatModelFields {
  runtime: LlamaCppRuntime;
  maxTokens: number;
  temperature: number;
  /** Same seed, prompt, model and threads: the same reply. Unset: a new one each time. */
  seed: number | undefined;
  /** Constrains the reply to JSON matching this JSON Schema with llama.cpp's grammar sampling. */
  jsonSchema: Record<string, unknown> | undefined;
  /** Longest one reply may take once it is this call's turn (ms). */
  timeoutMs: number;
}

/**
 * A LangChain chat model over a GGUF model in this process (node-llama-cpp's
 * LlamaChat, which formats the conversation with the model's own chat
 * template). Streams one chunk per piece of text node-llama-cpp decodes, and
 * closes with a chunk whose `finish_reason` says why the reply ended.
 *
 * Why not @langchain/community's ChatLlamaCpp: it loads a model per instance
 * (ours is loaded once per process and shared, while a LangChain model is
 * made per call), reports no finish reason (a reply cut at the token limit
 * must be told from a finished one), takes no grammar per call, and brings
 * a package of a few hundred integrations for one class.
 *
 * Cancel: the call's `signal` aborts the native generation between tokens; a
 * consumer that stops reading (breaks out of the stream) stops it too. The
 * turn on the model is given back only once the generation has stopped.
 */
export class LlamaCppChatModel extends BaseChatModel<BaseChatModelCallOptions, AIMessageChunk> {
  private readonly fields: LlamaCppChatModelFields;

  constructor(fields: LlamaCppChatModelFields) {
    super({});
    this.fields = fields;
  }

  _llmType(): string {
    return 'node-llama-cpp';
  }

  async _generate(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: CallbackManagerForLLMRun): Promise<ChatResult> {
    let reply: ChatGenerationChunk | undefined;
    for await (const chunk of this._streamResponseChunks(messages, options, runManager)) reply = reply ? reply.concat(chunk) : chunk;
    return { generations: reply ? [reply] : [] };
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    const { runtime, maxTokens, temperature, seed, jsonSchema, timeoutMs } = this.fields;
    const stopped = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stopped.signal]) : stopped.signal;
    const pieces: string[] = [];
    let wake: (() => void) | null = null;
    let outcome: { finish: LlamaFinishReason } | { error: unknown } | null = null;
    const settle = (result: { finish: LlamaFinishReason } | { error: unknown }) => {
      outcome = result;
      wake?.();
    };

    const generation = runtime
      .withTurn(signal, async ({ sequence, chatWrapper, grammarFor }) => {
        const grammar = jsonSchema ? await grammarFor(jsonSchema) : undefined;
        // The timeout counts from this call's turn, not from the wait for it.
        const timeout = AbortSignal.timeout(timeoutMs);
        const chat = new LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false });
        try {
          const { metadata } = await chat.generateResponse(toChatHistory(messages), {
            signal: AbortSignal.any([signal, timeout]),
            maxTokens,
            temperature,
            seed,
            grammar,
            onTextChunk: (text) => {
              pieces.push(text);
              wake?.();
            },
          });
          return metadata.stopReason === 'maxTokens' ? LlamaFinishReason.Length : LlamaFinishReason.Stop;
        } catch (error) {
          if (timeout.aborted && !signal.aborted) throw timeoutError(timeoutMs, error);
          throw error;
        } finally {
          chat.dispose({ disposeSequence: false });
        }
      })
      .then(
        (finish) => settle({ finish }),
        (error: unknown) => settle({ error }),
      );

    try {
      while (true) {
        const text = pieces.splice(0).join('');
        if (text !== '') {
          await runManager?.handleLLMNewToken(text);
          yield new ChatGenerationChunk({ text, message: new AIMessageChunk({ content: text }) });
          continue;
        }
        const ended = outcome as { finish: LlamaFinishReason } | { error: unknown } | null;
        if (ended) {
          if ('error' in ended) throw ended.error;
          yield new ChatGenerationChunk({
            text: '',
            message: new AIMessageChunk({ content: '', response_metadata: { finish_reason: ended.finish } }),
            generationInfo: { finish_reason: ended.finish },
          });
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    } finally {
      // A reader that stopped early (or a failure) ends the native generation before the turn is given back.
      stopped.abort();
      await generation;
    }
  }
}

/** LangChain messages as node-llama-cpp's chat history, ending with the model's (empty) turn to answer. */
function toChatHistory(messages: BaseMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message) => {
    const text = message.text;
    switch (message.type) {
      case 'system':
        return { type: 'system', text };
      case 'ai':
        return { type: 'model', response: [text] };
      default:
        return { type: 'user', text };
    }
  });
  history.push({ type: 'model', response: [] });
  return history;
}

/** Named as fetch names its timeouts, so the chat client explains it as one (with the setting to raise). */
function timeoutError(timeoutMs: number, cause: unknown): Error {
  const error = new Error(`no reply within ${timeoutMs} ms`, { cause });
  error.name = 'TimeoutError';
  return error;
}
