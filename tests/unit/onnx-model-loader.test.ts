import fs from 'node:fs/promises';
import path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { looksLikeModelDir, ModelLayoutError, validateModelDir } from '../../src/services/images/onnx/model-layout.js';
import { defaultsFor, loadModel, type LoadedModel } from '../../src/services/images/onnx/model-loader.js';
import { buildTinySdModel, type TinyModel, type TinyModelOptions } from '../support/tiny-sd-model.js';

const built: TinyModel[] = [];
const opened: LoadedModel[] = [];

async function tiny(options: TinyModelOptions = {}): Promise<TinyModel> {
  const model = await buildTinySdModel(options);
  built.push(model);
  return model;
}

async function load(dir: string): Promise<LoadedModel> {
  const model = await loadModel(dir, {
    providers: ['cpu'],
    factory: { create: (file, options) => InferenceSession.create(file, options) },
    onFallback: () => undefined,
  });
  opened.push(model);
  return model;
}

afterAll(async () => {
  await Promise.all(opened.map((model) => Promise.all(Object.values(model.sessions).map((session) => session.release()))));
  await Promise.all(built.map((model) => model.remove()));
});

describe('the tiny test model', () => {
  it('stays small (well under 5 MB, external data included)', async () => {
    const model = await tiny({ externalData: true });
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else total += (await fs.stat(full)).size;
      }
    };
    await walk(model.dir);
    expect(total).toBeLessThan(1_000_000);
  });

  it('is byte-identical for the same options', async () => {
    const [a, b] = [await tiny(), await tiny()];
    expect(await fs.readFile(path.join(a.dir, 'unet/model.onnx'))).toEqual(await fs.readFile(path.join(b.dir, 'unet/model.onnx')));
  });
});

describe('loading the standard layout', () => {
  it('reads names, dtypes and shapes from the sessions (fp32, int64 timestep)', async () => {
    const model = await load((await tiny()).dir);
    expect(model.io.textEncoder.inputIds).toEqual({ name: 'input_ids', type: 'int32', shape: ['batch_size', 'sequence_length'] });
    expect(model.io.textEncoder.sequenceLength).toBe(77);
    expect(model.io.unet.sample).toEqual({ name: 'sample', type: 'float32', shape: ['batch_size', 4, 'height', 'width'] });
    expect(model.io.unet.timestep.type).toBe('int64');
    expect(model.io.unet.fixedBatch).toBeNull();
    expect(model.io.unet.fixedLatentSize).toBeNull();
    expect(model.io.vaeDecoder.latent.name).toBe('latent_sample');
    expect(model.providers).toEqual({ textEncoder: 'cpu', unet: 'cpu', vaeDecoder: 'cpu' });
    expect(model.tokenizer.encode('a photo of a cat').tokenCount).toBe(5);
    expect(model.folder.vaeScalingFactor).toBe(0.18215);
  });

  it('handles a float timestep and float16 tensors', async () => {
    const model = await load((await tiny({ precision: 'fp16', timestepType: 'float32' })).dir);
    expect(model.io.unet.sample.type).toBe('float16');
    expect(model.io.unet.timestep.type).toBe('float16');
    expect(model.io.textEncoder.output.type).toBe('float16');
    expect(model.io.vaeDecoder.output.type).toBe('float16');
  });

  it('loads weights kept in an external data file (unet/model.onnx_data)', async () => {
    const dir = (await tiny({ externalData: true })).dir;
    expect((await fs.stat(path.join(dir, 'unet/model.onnx_data'))).size).toBeGreaterThan((await fs.stat(path.join(dir, 'unet/model.onnx'))).size);
    const model = await load(dir);
    expect(model.io.unet.output.name).toBe('out_sample');
  });

  it('finds the LCM timestep_cond input', async () => {
    const model = await load((await tiny({ timestepCondDim: 16, scheduler: { _class_name: 'LCMScheduler' } })).dir);
    expect(model.io.unet.timestepCond).toMatchObject({ name: 'timestep_cond', shape: ['batch_size', 16] });
    expect(model.defaults).toEqual({ family: 'lcm', steps: 4, guidanceScale: 8 });
  });
});

describe('model defaults', () => {
  it('turbo: 1 step, no guidance; LCM: 4 steps; others: 25 steps at 7.5', () => {
    expect(defaultsFor({ aliases: ['stabilityai/sd-turbo'] }, 'euler', false)).toEqual({ family: 'turbo', steps: 1, guidanceScale: 0 });
    // The pulled repository counts when the index names something else.
    expect(defaultsFor({ aliases: ['/home/me/export', 'TensorStack/SD-Turbo-onnx', 'sd'] }, 'euler', false)).toMatchObject({ family: 'turbo' });
    expect(defaultsFor({ aliases: ['SimianLuo/LCM_Dreamshaper_v7'] }, 'lcm', true)).toEqual({ family: 'lcm', steps: 4, guidanceScale: 8 });
    expect(defaultsFor({ aliases: ['some-lcm-lora-merge'] }, 'euler', false)).toEqual({ family: 'lcm', steps: 4, guidanceScale: 1 });
    expect(defaultsFor({ aliases: ['onnx-community/stable-diffusion-v1-5-ONNX'] }, 'pndm', false)).toEqual({ family: 'sd', steps: 25, guidanceScale: 7.5 });
  });
});

describe('turbo models', () => {
  it('get trailing timesteps even when their scheduler_config.json says otherwise (one step must start at t=999)', async () => {
    const notes: string[] = [];
    const tiny = await buildTinySdModel({ name: 'stabilityai/sd-turbo', scheduler: { timestep_spacing: 'leading' } });
    built.push(tiny);
    const model = await loadModel(tiny.dir, {
      providers: ['cpu'],
      factory: { create: (file, options) => InferenceSession.create(file, options) },
      onFallback: () => undefined,
      onNote: (note) => notes.push(note),
    });
    opened.push(model);
    expect(model.defaults).toEqual({ family: 'turbo', steps: 1, guidanceScale: 0 });
    expect(model.schedulerConfig.timestep_spacing).toBe('trailing');
    expect(notes).toEqual([expect.stringContaining('using trailing timesteps (scheduler_config.json says leading)')]);
  });
});

describe('a folder that is not a valid model', () => {
  it('is not taken for a model without model_index.json', async () => {
    const model = await tiny();
    expect(looksLikeModelDir(model.dir)).toBe(true);
    await fs.rm(path.join(model.dir, 'model_index.json'));
    expect(looksLikeModelDir(model.dir)).toBe(false);
    expect(() => validateModelDir(model.dir)).toThrow(/model_index\.json is missing/);
  });

  it.each([
    ['unet/model.onnx', /unet\/model\.onnx is missing/],
    ['tokenizer/merges.txt', /tokenizer\/merges\.txt is missing/],
    ['scheduler/scheduler_config.json', /scheduler\/scheduler_config\.json is missing/],
    ['vae_decoder/model.onnx', /vae_decoder\/model\.onnx is missing/],
  ])('names the missing file (%s)', async (file, message) => {
    const model = await tiny();
    await fs.rm(path.join(model.dir, file));
    expect(() => validateModelDir(model.dir)).toThrow(ModelLayoutError);
    expect(() => validateModelDir(model.dir)).toThrow(message);
  });

  it('names a malformed JSON file', async () => {
    const model = await tiny();
    await fs.writeFile(path.join(model.dir, 'scheduler/scheduler_config.json'), '{"_class_name": ');
    expect(() => validateModelDir(model.dir)).toThrow(/scheduler_config\.json is not valid JSON/);
  });

  it('names an ONNX file ONNX Runtime cannot read', async () => {
    const model = await tiny();
    await fs.writeFile(path.join(model.dir, 'unet/model.onnx'), 'this is not a protobuf');
    await expect(load(model.dir)).rejects.toThrow(/unet\/model\.onnx could not be opened by ONNX Runtime/);
  });

  it('names an external data file that is missing', async () => {
    const model = await tiny({ externalData: true });
    await fs.rm(path.join(model.dir, 'unet/model.onnx_data'));
    await expect(load(model.dir)).rejects.toThrow(/unet\/model\.onnx could not be opened by ONNX Runtime/);
  });
});
