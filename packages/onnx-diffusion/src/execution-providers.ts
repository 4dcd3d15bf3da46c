import os from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';

/**
 * ORT_EXECUTION_PROVIDERS, tried in order. onnxruntime-node does not fall back
 * by itself: a session asked for `cuda` on a machine without the CUDA provider
 * library throws. So each provider is tried in turn, a failure is reported once
 * (with why) and that provider is skipped for the remaining models.
 */
export const KNOWN_PROVIDERS = ['cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'cpu'] as const;
export type ProviderName = (typeof KNOWN_PROVIDERS)[number];

export const DEFAULT_PROVIDERS = 'cuda,cpu';

export function parseProviderList(value: string): ProviderName[] {
  const names = value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.filter((name) => !(KNOWN_PROVIDERS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`unknown execution provider ${unknown.join(', ')} (known: ${KNOWN_PROVIDERS.join(', ')})`);
  if (names.length === 0) throw new Error(`list at least one execution provider (known: ${KNOWN_PROVIDERS.join(', ')})`);
  return [...new Set(names)] as ProviderName[];
}

/** Every provider in the list failed: a configuration problem, not a broken model. */
export class NoProviderError extends Error {
  override name = 'NoProviderError';
}

/** Why a provider was passed over, in one line. */
export interface ProviderFallback {
  provider: ProviderName;
  reason: string;
}

export interface SessionFactory {
  create(modelPath: string, options: InferenceSession.SessionOptions): Promise<InferenceSession>;
}

/** Shortens ORT's multi-line messages (paths, source locations) to what a user can act on. */
export function summarizeProviderError(provider: ProviderName, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/Failed to load shared library|libonnxruntime_providers_/.test(message) && (provider === 'cuda' || provider === 'tensorrt')) {
    return `the ${provider} provider library is not installed (run \`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12\`; needs CUDA 12 and cuDNN 9)`;
  }
  if (/adapter/i.test(message) && provider === 'webgpu') return 'no WebGPU adapter (no GPU visible to Dawn/Vulkan)';
  if (/backend not found/i.test(message)) return `onnxruntime-node on this platform has no ${provider} provider`;
  const line = message
    .split('\n')
    .map((part) => part.trim())
    .find((part) => part.length > 0);
  return (line ?? 'unknown error').replace(/^\/onnxruntime_src\/\S+\s*/, '').slice(0, 300);
}

/**
 * Opens sessions on the first provider in the list that works; providers that
 * failed once are not tried again. Errors that are not about the provider
 * (a corrupt model file) surface at once rather than after every provider.
 */
export class ProviderChain {
  private readonly failed = new Map<ProviderName, string>();

  constructor(
    private readonly providers: readonly ProviderName[],
    private readonly factory: SessionFactory,
    private readonly onFallback: (fallback: ProviderFallback, next: ProviderName | null) => void,
  ) {}

  async open(modelPath: string, options: InferenceSession.SessionOptions = {}): Promise<{ session: InferenceSession; provider: ProviderName }> {
    const candidates = this.providers.filter((provider) => !this.failed.has(provider));
    let lastError: unknown = null;
    for (const [index, provider] of candidates.entries()) {
      try {
        const session = await this.factory.create(modelPath, { ...providerDefaults(provider), ...options, executionProviders: [provider] });
        return { session, provider };
      } catch (error) {
        lastError = error;
        // CPU failing means the model itself is the problem, not the provider.
        if (provider === 'cpu' || !looksLikeProviderProblem(error)) throw error;
        const reason = summarizeProviderError(provider, error);
        this.failed.set(provider, reason);
        this.onFallback({ provider, reason }, candidates[index + 1] ?? null);
      }
    }
    const tried = [...this.failed.entries()].map(([provider, reason]) => `${provider}: ${reason}`).join('; ');
    throw new NoProviderError(`no execution provider in ORT_EXECUTION_PROVIDERS (${this.providers.join(',')}) could be used (${tried}); add cpu to the list`, {
      cause: lastError,
    });
  }

  get fallbacks(): ProviderFallback[] {
    return [...this.failed.entries()].map(([provider, reason]) => ({ provider, reason }));
  }
}

/**
 * On the CPU provider ORT would use every core for one UNet run; one is left to
 * the server's event loop (and the worker's own JS), or WebSocket progress and
 * queries stall behind inference on small machines.
 */
function providerDefaults(provider: ProviderName): InferenceSession.SessionOptions {
  return provider === 'cpu' ? { intraOpNumThreads: Math.max(1, os.availableParallelism() - 1) } : {};
}

function looksLikeProviderProblem(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  // Model parse/validation errors name the model; provider errors name the provider or its libraries.
  return !/(Load model from|Protobuf parsing failed|INVALID_PROTOBUF|INVALID_GRAPH|No such file|ENOENT)/i.test(message);
}
