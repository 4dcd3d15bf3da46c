import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { GenerationProgressDocument, GenerationSessionDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import type { ServerProcess } from '../support/processes.js';
import { startScaledOutStack, type ScaledOutStack } from '../support/scaled-out-stack.js';

/**
 * The split layout with IMAGE_BACKEND unset and no picture model at start: a model that
 * appears in the shared SD_MODEL_DIR (as another process's download swaps it in) is
 * picked up by the worker for its next generation, without a restart.
 */
let stack: ScaledOutStack;
let model: TinyModel;
let modelsDir: string;

beforeAll(async () => {
  model = await buildTinySdModel({ timestepType: 'int64' });
});

afterAll(() => model.remove());

beforeEach(async () => {
  stack = await startScaledOutStack('pictures');
  modelsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-shared-models-'));
});

afterEach(async () => {
  await stack.close();
  await fs.rm(modelsDir, { recursive: true, force: true });
});

async function generate(api: ServerProcess) {
  const client = stack.client(api);
  const { startGeneration } = await client.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
  const events = (await client.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);
  const { generationSession } = await client.query(GenerationSessionDocument, { id: startGeneration.id });
  return { last: events.at(-1)!, images: generationSession!.story!.images.map((image) => image.imageType) };
}

describe('a worker started without a picture model', () => {
  it('paints the next book once a complete model appears in SD_MODEL_DIR', async () => {
    const sdModelDir = path.join(modelsDir, 'sd');
    // No AUTOMATIC1111 and no IMAGE_BACKEND: pictures are chosen by what is in SD_MODEL_DIR.
    const env = { AUTOMATIC1111_URL: undefined, IMAGE_BACKEND: undefined, SD_MODEL_DIR: sdModelDir, ORT_EXECUTION_PROVIDERS: 'cpu' };
    const api = await stack.start('api', env);
    const worker = await stack.start('worker', env);

    const before = await generate(api);
    expect(before.last).toMatchObject({ status: 'COMPLETED', warningDetails: [expect.objectContaining({ code: 'IMAGES_OFF' })] });
    expect(before.images).toEqual([]);

    // As a download finishes: the complete folder is renamed into place.
    await fs.cp(model.dir, `${sdModelDir}.download`, { recursive: true });
    await fs.rename(`${sdModelDir}.download`, sdModelDir);

    const after = await generate(api);
    expect(after.last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    expect(after.images).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
    expect(worker.logs.some((line) => line.msg === 'picture model found in SD_MODEL_DIR: images enabled')).toBe(true);
  });

  it('keeps a half-copied model off, and picks it up once the missing file is in', async () => {
    const sdModelDir = path.join(modelsDir, 'sd');
    const env = { AUTOMATIC1111_URL: undefined, IMAGE_BACKEND: undefined, SD_MODEL_DIR: sdModelDir, ORT_EXECUTION_PROVIDERS: 'cpu' };
    const api = await stack.start('api', env);
    await stack.start('worker', env);

    // Copied by hand, file by file: the UNet is still empty.
    await fs.cp(model.dir, sdModelDir, { recursive: true });
    const unet = path.join(sdModelDir, 'unet/model.onnx');
    const unetBytes = await fs.readFile(unet);
    await fs.writeFile(unet, '');
    const partial = await generate(api);
    expect(partial.last.warningDetails.map((warning) => warning.code)).toEqual(['IMAGES_OFF']);
    expect(partial.images).toEqual([]);

    await fs.writeFile(unet, unetBytes);
    const complete = await generate(api);
    expect(complete.last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    expect(complete.images).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED']);
  });
});
