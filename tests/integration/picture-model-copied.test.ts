import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  RegeneratePageImageDocument,
  StartGenerationDocument,
  StoryDocument,
} from '../../src/client/generated/graphql.js';
import { test as it } from '../support/fixtures.js';
import type { TestServer } from '../support/test-server.js';

/**
 * The all-in-one layout with IMAGE_BACKEND unset and no picture model at start: a model copied
 * into SD_MODEL_DIR by hand while the server runs is noticed when a repaint is asked for and when
 * the next book starts, without a restart.
 */
let model: TinyModel;

beforeAll(async () => {
  model = await buildTinySdModel({ timestepType: 'int64' });
});

afterAll(async () => {
  await OnnxRuntimeHost.releaseAll();
  await model.remove();
});

async function generate(server: TestServer) {
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount: 2 } });
  const events = (await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map((event) => event.generationProgress);
  const { generationSession } = await server.query(GenerationSessionDocument, { id: startGeneration.id });
  return { last: events.at(-1)!, story: generationSession!.story! };
}

describe('an all-in-one server started without a picture model', () => {
  it('allows a repaint and paints the next book once a model is copied into SD_MODEL_DIR by hand', async ({ startServer }) => {
    const server = await startServer({ env: { AUTOMATIC1111_URL: undefined, IMAGE_BACKEND: undefined, ORT_EXECUTION_PROVIDERS: 'cpu' } });
    const sdModelDir = path.join(server.dataDir, 'models/sd');

    const textOnly = await generate(server);
    expect(textOnly.last).toMatchObject({ status: 'COMPLETED', warningDetails: [expect.objectContaining({ code: 'IMAGES_OFF' })] });
    expect(textOnly.story.images).toEqual([]);
    const refused = await server.request(RegeneratePageImageDocument, { storyId: textOnly.story.id, pageIndex: 0 });
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'IMAGES_DISABLED' } });

    await fs.cp(model.dir, sdModelDir, { recursive: true });

    const { regeneratePageImage } = await server.query(RegeneratePageImageDocument, { storyId: textOnly.story.id, pageIndex: 0 });
    const repainted = await server.subscribe(GenerationProgressDocument, { sessionId: regeneratePageImage.id }).done;
    expect(repainted.at(-1)!.generationProgress).toMatchObject({ status: 'COMPLETED', pageIndex: 0 });
    const { story } = await server.query(StoryDocument, { id: textOnly.story.id });
    expect(story!.pages[0].backgroundImage).not.toBeNull();

    const painted = await generate(server);
    expect(painted.last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    expect(painted.story.images.map((image) => image.imageType)).toEqual(['CHARACTER', 'BACKGROUND', 'COMBINED', 'BACKGROUND', 'COMBINED']);
  });
});
