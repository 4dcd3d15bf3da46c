import type { AIMessageChunk } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { FinishReason, type ChatBackend, type ChatModelRequest, type ChunkReading } from '../../ports/chat-backend.js';
import { TextGenerationError } from '../../ports/text-generator.js';
import { type ChatServerSettings, ConfiguredChatBackend } from './chat-server-settings.js';

export interface OpenAiSettings extends ChatServerSettings {
  /** baseUrl goes up to and including the API version, e.g. http://127.0.0.1:8080/v1. */
  apiKey: string | undefined;
}

/** Local servers ignore the key, but the OpenAI client refuses to start without one. */
const NO_KEY = 'not-needed';

/**
 * Any server speaking OpenAI's `/v1/chat/completions` (llama.cpp's server,
 * vLLM, LM Studio, KoboldCpp, hosted APIs) through LangChain's ChatOpenAI.
 */
export class OpenAiChatBackend extends ConfiguredChatBackend<OpenAiSettings> implements ChatBackend {
  readonly name = 'The OpenAI-compatible server';
  readonly settings = { model: 'OPENAI_MODEL', baseUrl: 'OPENAI_BASE_URL', timeout: 'OPENAI_REQUEST_TIMEOUT_MS' };
  readonly startHint = 'start it (llama.cpp `llama-server`, vLLM, LM Studio, …)';

  chatModel({ maxTokens, fetch, jsonSchema }: ChatModelRequest): ChatOpenAI {
    return new ChatOpenAI({
      model: this.config.model,
      apiKey: this.config.apiKey ?? NO_KEY,
      temperature: this.config.temperature,
      maxTokens,
      streaming: true,
      // Older servers refuse `stream_options`; usage is not needed.
      streamUsage: false,
      // Retries are the job queue's, with backoff and a note to the user.
      maxRetries: 0,
      timeout: this.config.requestTimeoutMs,
      configuration: { baseURL: this.config.baseUrl, fetch },
      modelKwargs: jsonSchema
        ? { response_format: { type: 'json_schema', json_schema: { name: jsonSchema.name, schema: jsonSchema.schema, strict: true } } }
        : {},
    });
  }

  read(chunk: AIMessageChunk): ChunkReading {
    const reasoning = chunk.additional_kwargs?.reasoning_content;
    const reason = (chunk.response_metadata as { finish_reason?: string } | undefined)?.finish_reason;
    const finish = !reason ? null : reason === 'length' ? FinishReason.Length : reason === 'stop' ? FinishReason.Stop : FinishReason.Other;
    return { text: typeof chunk.content === 'string' ? chunk.content : '', reasoning: typeof reasoning === 'string' ? reasoning : '', finish };
  }

  explain(error: unknown, activity: string): TextGenerationError | null {
    const { baseUrl, model } = this.config;
    const err = error as { status?: number; message?: string; error?: { message?: string } };
    if (typeof err?.status !== 'number') return null;
    const detail = err.error?.message ?? err.message ?? '';
    if (err.status === 401 || err.status === 403) {
      return new TextGenerationError(
        `The OpenAI-compatible server at ${baseUrl} refused the API key (HTTP ${err.status}: ${detail}); set OPENAI_API_KEY to a key it accepts`,
        'server-error',
        { cause: error },
      );
    }
    if (err.status === 404 && /model/i.test(detail)) return this.modelMissing(detail);
    return new TextGenerationError(
      `The OpenAI-compatible server at ${baseUrl} failed while ${activity} with model ${model} (HTTP ${err.status}: ${detail}); check the server log`,
      'server-error',
      { cause: error },
    );
  }

  async checkAvailable(fetch: typeof globalThis.fetch): Promise<void> {
    const url = `${this.config.baseUrl}/models`;
    const response = await fetch(url, { headers: { authorization: `Bearer ${this.config.apiKey ?? NO_KEY}` } });
    if (response.status === 401 || response.status === 403) {
      throw new TextGenerationError(
        `The OpenAI-compatible server at ${this.config.baseUrl} refused the API key (HTTP ${response.status}); set OPENAI_API_KEY to a key it accepts`,
        'server-error',
      );
    }
    // Not every server lists its models; one that does must list ours.
    if (!response.ok) return;
    const body = (await response.json().catch(() => ({}))) as { data?: { id?: string }[] };
    const ids = (body.data ?? []).map((entry) => entry.id).filter(Boolean);
    if (ids.length > 0 && !ids.includes(this.config.model)) throw this.modelMissing(`it serves ${ids.slice(0, 5).join(', ')}`);
  }

  private modelMissing(detail: string): TextGenerationError {
    return new TextGenerationError(
      `The OpenAI-compatible server at ${this.config.baseUrl} does not serve the model "${this.config.model}" (${detail}); set OPENAI_MODEL to one it serves (see ${this.config.baseUrl}/models)`,
      'model-missing',
    );
  }
}
