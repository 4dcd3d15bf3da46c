import path from 'node:path';
import type { AIMessageChunk } from '@langchain/core/messages';
import { FinishReason, type ChatBackend, type ChatModelRequest, type ChunkReading } from '../../ports/chat-backend.js';
import { TextGenerationError } from '../../ports/text-generator.js';
import type { Logger } from '../../logger.js';
import { LlamaCppChatModel, LlamaFinishReason } from './llama-cpp-chat-model.js';
import { type EmbeddedModelSettings, LlamaCppRuntime } from './llama-cpp-runtime.js';

export interface EmbeddedSettings extends EmbeddedModelSettings {
  temperature: number;
  /** Longest one reply may take once it is its turn on the model (ms). */
  requestTimeoutMs: number;
  /** Fixed: the same prompt gives the same text (tests, comparisons); unset: a new seed each reply. */
  seed: number | undefined;
}

/**
 * A GGUF model inside this process (TEXT_BACKEND=embedded) through
 * node-llama-cpp: no server to run. The model loads at the first generation
 * and stays loaded; structured output is grammar-constrained, so even a
 * small model answers with JSON that matches the schema.
 */
export class EmbeddedChatBackend implements ChatBackend {
  readonly name = 'The embedded model';
  readonly settings = { model: 'EMBEDDED_MODEL_FILE', baseUrl: 'EMBEDDED_MODEL_FILE', timeout: 'EMBEDDED_REQUEST_TIMEOUT_MS' };
  readonly startHint = 'download it with `story-agent setup` or the Download button on the page';
  private readonly runtime: LlamaCppRuntime;

  constructor(
    private readonly config: EmbeddedSettings,
    logger: Logger,
  ) {
    this.runtime = new LlamaCppRuntime(config, logger);
  }

  /** The model file: messages say "The embedded model at <file>". */
  get baseUrl(): string {
    return this.config.modelFile;
  }
  get model(): string {
    return path.basename(this.config.modelFile).replace(/\.gguf$/i, '');
  }
  get temperature(): number {
    return this.config.temperature;
  }
  get requestTimeoutMs(): number {
    return this.config.requestTimeoutMs;
  }

  /** No HTTP here: `fetch` goes unused. */
  chatModel({ maxTokens, jsonSchema }: ChatModelRequest): LlamaCppChatModel {
    return new LlamaCppChatModel({
      runtime: this.runtime,
      maxTokens,
      temperature: this.config.temperature,
      seed: this.config.seed,
      jsonSchema: jsonSchema?.schema,
      timeoutMs: this.config.requestTimeoutMs,
    });
  }

  read(chunk: AIMessageChunk): ChunkReading {
    const reason = (chunk.response_metadata as { finish_reason?: string } | undefined)?.finish_reason;
    const finish = !reason ? null : reason === LlamaFinishReason.Length ? FinishReason.Length : FinishReason.Stop;
    return { text: typeof chunk.content === 'string' ? chunk.content : '', reasoning: '', finish };
  }

  explain(error: unknown, activity: string): TextGenerationError | null {
    if (error instanceof TextGenerationError) return error;
    if ((error as { name?: string })?.name === 'TimeoutError') return null;
    return new TextGenerationError(
      `The embedded model ${this.model} failed while ${activity} (${(error as Error)?.message ?? String(error)}); see the server log`,
      'server-error',
      { cause: error },
    );
  }

  checkAvailable(): Promise<void> {
    return this.runtime.checkFile();
  }

  close(): Promise<void> {
    return this.runtime.close();
  }

  /** Frees the loaded model once no generation is in its turn (TEXT_BACKEND unset and Ollama in use); its next use loads it again. */
  unload(): Promise<void> {
    return this.runtime.unload();
  }
}
