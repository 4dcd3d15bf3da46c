import type { AIMessageChunk } from '@langchain/core/messages';
import { ChatOllama } from '@langchain/ollama';
import { FinishReason, type ChatBackend, type ChatModelRequest, type ChunkReading } from '../../ports/chat-backend.js';
import { TextGenerationError } from '../../ports/text-generator.js';
import { type ChatServerSettings, ConfiguredChatBackend } from './chat-server-settings.js';

export type OllamaSettings = ChatServerSettings;

/** Ollama's `/api/chat` through LangChain's ChatOllama. */
export class OllamaChatBackend extends ConfiguredChatBackend<OllamaSettings> implements ChatBackend {
  readonly name = 'Ollama';
  readonly settings = { model: 'OLLAMA_MODEL', baseUrl: 'OLLAMA_BASE_URL', timeout: 'OLLAMA_REQUEST_TIMEOUT_MS' };
  readonly startHint = 'start it with `ollama serve`';

  chatModel({ maxTokens, fetch, jsonSchema }: ChatModelRequest): ChatOllama {
    return new ChatOllama({
      baseUrl: this.config.baseUrl,
      model: this.config.model,
      temperature: this.config.temperature,
      numPredict: maxTokens,
      // Reasoning models (qwen3, deepseek-r1) then answer without thinking first; models that cannot think ignore it.
      think: false,
      format: jsonSchema?.schema,
      fetch,
    });
  }

  read(chunk: AIMessageChunk): ChunkReading {
    const reasoning = chunk.additional_kwargs?.reasoning_content;
    const metadata = chunk.response_metadata as { done?: boolean; done_reason?: string } | undefined;
    // Only the closing line carries `done`; a stream cut short never gets it.
    const finish =
      metadata?.done === true
        ? metadata.done_reason === 'length'
          ? FinishReason.Length
          : metadata.done_reason === 'stop' || !metadata.done_reason
            ? FinishReason.Stop
            : FinishReason.Other
        : null;
    return { text: typeof chunk.content === 'string' ? chunk.content : '', reasoning: typeof reasoning === 'string' ? reasoning : '', finish };
  }

  explain(error: unknown, activity: string): TextGenerationError | null {
    const { baseUrl, model } = this.config;
    const err = error as { message?: string; status_code?: number };
    const message = err?.message ?? String(error);
    if (err?.status_code === 404 || /model .* not found/i.test(message)) return this.modelMissing();
    if (typeof err?.status_code === 'number') {
      return new TextGenerationError(
        `Ollama at ${baseUrl} failed while ${activity} with model ${model} (HTTP ${err.status_code}: ${message}); check the Ollama server log`,
        'server-error',
        { cause: error },
      );
    }
    return null;
  }

  async checkAvailable(fetch: typeof globalThis.fetch): Promise<void> {
    const url = `${this.config.baseUrl}/api/tags`;
    const response = await fetch(url);
    if (!response.ok) {
      throw new TextGenerationError(`Ollama at ${this.config.baseUrl} answered HTTP ${response.status} to ${url}`, 'server-error');
    }
    const body = (await response.json()) as { models?: { name?: string; model?: string }[] };
    const wanted = this.config.model.includes(':') ? this.config.model : `${this.config.model}:latest`;
    const names = (body.models ?? []).flatMap((model) => [model.name, model.model]).filter(Boolean);
    if (!names.includes(wanted) && !names.includes(this.config.model)) throw this.modelMissing();
  }

  private modelMissing(): TextGenerationError {
    return new TextGenerationError(
      `Ollama at ${this.config.baseUrl} does not have the model "${this.config.model}": run \`ollama pull ${this.config.model}\` (or set OLLAMA_MODEL to a model you have)`,
      'model-missing',
    );
  }
}
