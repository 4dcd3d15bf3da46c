import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { AIMessageChunk } from '@langchain/core/messages';
import type { TextGenerationError } from './text-generator.js';

/** Why a reply ended: finished, cut at the token limit, or anything else the server reports. */
export enum FinishReason {
  Stop = 'stop',
  Length = 'length',
  Other = 'other',
}

/** What one streamed chunk carries, in the same terms whatever the provider. */
export interface ChunkReading {
  /** Answer text (may still hold inline `<think>` reasoning; the caller strips it). */
  text: string;
  /** Reasoning the server delivered in a field of its own (Ollama `thinking`, OpenAI-style `reasoning_content`). */
  reasoning: string;
  /** Set on the chunk that closes the reply; a stream that ends without one was cut. */
  finish: FinishReason | null;
}

export interface ChatModelRequest {
  /** The most tokens the reply may have (Ollama `num_predict`, OpenAI `max_tokens`). */
  maxTokens: number;
  /** The fetch to use for every HTTP call of this model (timeouts and stall detection). */
  fetch: typeof globalThis.fetch;
  /** Asks for JSON matching this JSON Schema (Ollama `format`, OpenAI `response_format`, a llama.cpp grammar in-process). */
  jsonSchema?: { name: string; schema: Record<string, unknown> };
}

/**
 * One text provider (a model server, or a model in this process): makes LangChain chat models for it, reads its chunks and
 * explains its own errors. Everything else (streaming, limits, reasoning,
 * cleaning, structured output, generic network errors) is provider-neutral
 * and lives in ChatModelClient.
 */
export interface ChatBackend {
  /** What the server is called in messages: "Ollama", "The OpenAI-compatible server". */
  readonly name: string;
  readonly baseUrl: string;
  readonly model: string;
  readonly temperature: number;
  readonly requestTimeoutMs: number;
  /** Settings a user changes to fix things, named in messages. */
  readonly settings: { model: string; baseUrl: string; timeout: string };
  /** How to start the server when it is not reachable, e.g. "start it with `ollama serve`". */
  readonly startHint: string;
  /** A new model per call: a LangChain model's abort() cancels every request of the instance. */
  chatModel(request: ChatModelRequest): BaseChatModel;
  read(chunk: AIMessageChunk): ChunkReading;
  /** A provider-specific explanation (HTTP status, model missing, key refused), or null to fall back to the generic ones. */
  explain(error: unknown, activity: string): TextGenerationError | null;
  /** Throws a TextGenerationError with an actionable message when the model cannot be used. */
  checkAvailable(fetch: typeof globalThis.fetch): Promise<void>;
  /** Lets go of what the backend holds in this process (an embedded model); servers need nothing. */
  close?(): Promise<void>;
}
