import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

async function withModelDir<T>(run: (dataDir: string) => T | Promise<T>): Promise<T> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onnx-config-'));
  await fs.mkdir(path.join(dataDir, 'models', 'sd'), { recursive: true });
  await fs.writeFile(path.join(dataDir, 'models', 'sd', 'model_index.json'), '{}');
  try {
    return await run(dataDir);
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

describe('in-process image settings', () => {
  it('defaults: SD_MODEL_DIR under DATA_DIR, providers cuda then cpu, steps and guidance from the model', () => {
    const config = loadConfig({ DATA_DIR: '/srv/story' });
    expect(config.images.sdModelDir).toBe(path.resolve('/srv/story/models/sd'));
    expect(config.images.ortExecutionProviders).toEqual(['cuda', 'cpu']);
    expect(config.images.numInferenceSteps).toBeUndefined();
    expect(config.images.guidanceScale).toBeUndefined();
  });

  it('picks onnx by default when SD_MODEL_DIR holds a model', async () => {
    await withModelDir((dataDir) => {
      expect(loadConfig({ DATA_DIR: dataDir }).images.backend).toBe('onnx');
      expect(loadConfig({ SD_MODEL_DIR: path.join(dataDir, 'models', 'sd') }).images.backend).toBe('onnx');
    });
  });

  it('keeps automatic1111 when AUTOMATIC1111_URL is set, and an explicit IMAGE_BACKEND wins', async () => {
    await withModelDir((dataDir) => {
      expect(loadConfig({ DATA_DIR: dataDir, AUTOMATIC1111_URL: 'http://gpu:7860' }).images.backend).toBe('automatic1111');
      expect(loadConfig({ DATA_DIR: dataDir, IMAGE_BACKEND: 'none' }).images.backend).toBe('none');
    });
  });

  it('stays none without a model; IMAGE_BACKEND=onnx is accepted without one (start-up then says how to pull it)', () => {
    const empty = path.join(os.tmpdir(), 'no-such-story-agent-dir');
    expect(loadConfig({ DATA_DIR: empty }).images.backend).toBe('none');
    expect(loadConfig({ DATA_DIR: empty, IMAGE_BACKEND: 'onnx' }).images.backend).toBe('onnx');
  });

  it('reads the provider list, steps and guidance', () => {
    const config = loadConfig({ ORT_EXECUTION_PROVIDERS: 'webgpu, cpu', NUM_INFERENCE_STEPS: '4', GUIDANCE_SCALE: '1.5', SD_MODEL_DIR: 'models/x' });
    expect(config.images.ortExecutionProviders).toEqual(['webgpu', 'cpu']);
    expect(config.images.numInferenceSteps).toBe(4);
    expect(config.images.guidanceScale).toBe(1.5);
    expect(config.images.sdModelDir).toBe(path.resolve('models/x'));
  });

  it.each([
    ['ORT_EXECUTION_PROVIDERS', 'cuda,rocm'],
    ['NUM_INFERENCE_STEPS', '0'],
    ['NUM_INFERENCE_STEPS', '2.5'],
    ['GUIDANCE_SCALE', '-1'],
    ['IMAGE_BACKEND', 'onnxx'],
  ])('rejects %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
