import type { InferenceSession } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseProviderList, ProviderChain, summarizeProviderError, type ProviderFallback } from '../../src/services/images/onnx/execution-providers.js';

const CUDA_MISSING = 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library';
const NO_ADAPTER = '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 ... Failed to get a WebGPU adapter: No supported adapters';

function fakeFactory(outcomes: Record<string, string | null>) {
  const calls: string[] = [];
  return {
    calls,
    create: async (file: string, options: InferenceSession.SessionOptions) => {
      const provider = String(options.executionProviders?.[0]);
      calls.push(`${provider}:${file}`);
      const failure = outcomes[provider];
      if (failure) throw new Error(failure);
      return { provider } as unknown as InferenceSession;
    },
  };
}

describe('ORT_EXECUTION_PROVIDERS', () => {
  it('parses a comma list, trimmed, lower-cased, without duplicates', () => {
    expect(parseProviderList(' CUDA, cpu ,cuda')).toEqual(['cuda', 'cpu']);
    expect(parseProviderList('webgpu,cpu')).toEqual(['webgpu', 'cpu']);
  });

  it('rejects unknown names and empty lists', () => {
    expect(() => parseProviderList('cuda,rocm')).toThrow(/unknown execution provider rocm/);
    expect(() => parseProviderList(' , ')).toThrow(/at least one/);
  });
});

describe('provider fallback', () => {
  it('tries providers in order, reports each failure once with why, and skips it for later models', async () => {
    const factory = fakeFactory({ cuda: CUDA_MISSING, webgpu: NO_ADAPTER });
    const fallbacks: [ProviderFallback, string | null][] = [];
    const chain = new ProviderChain(['cuda', 'webgpu', 'cpu'], factory, (fallback, next) => fallbacks.push([fallback, next]));
    expect((await chain.open('text_encoder.onnx')).provider).toBe('cpu');
    expect((await chain.open('unet.onnx')).provider).toBe('cpu');
    expect(factory.calls).toEqual(['cuda:text_encoder.onnx', 'webgpu:text_encoder.onnx', 'cpu:text_encoder.onnx', 'cpu:unet.onnx']);
    expect(fallbacks).toEqual([
      [{ provider: 'cuda', reason: expect.stringContaining('npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12') }, 'webgpu'],
      [{ provider: 'webgpu', reason: 'no WebGPU adapter (no GPU visible to Dawn/Vulkan)' }, 'cpu'],
    ]);
  });

  it('uses the first provider when it works', async () => {
    const factory = fakeFactory({});
    const chain = new ProviderChain(['cuda', 'cpu'], factory, () => expect.unreachable());
    expect((await chain.open('unet.onnx')).provider).toBe('cuda');
  });

  it('says which providers failed and why when none in the list works', async () => {
    const chain = new ProviderChain(['cuda'], fakeFactory({ cuda: CUDA_MISSING }), () => undefined);
    await expect(chain.open('unet.onnx')).rejects.toThrow(
      /no execution provider in ORT_EXECUTION_PROVIDERS \(cuda\) could be used \(cuda: the cuda provider library is not installed/,
    );
  });

  it('does not blame the provider for a broken model file: the error surfaces at once', async () => {
    const factory = fakeFactory({ cuda: 'Load model from /m/unet/model.onnx failed:Protobuf parsing failed.' });
    const chain = new ProviderChain(['cuda', 'cpu'], factory, () => expect.unreachable());
    await expect(chain.open('unet.onnx')).rejects.toThrow(/Protobuf parsing failed/);
    expect(factory.calls).toEqual(['cuda:unet.onnx']);
  });

  it('keeps unexpected provider errors to their first line', () => {
    expect(summarizeProviderError('cuda', new Error('first line\n  at somewhere'))).toBe('first line');
  });
});
