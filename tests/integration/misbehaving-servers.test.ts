import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GenerationProgressDocument,
  GenerationSessionDocument,
  StartGenerationDocument,
  type GenerationProgressSubscription,
} from '../../src/client/generated/graphql.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES, startFakeOllama, type FakeChatServer } from '../support/fake-ollama.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

type Progress = GenerationProgressSubscription['generationProgress'];

/** Whole generations against servers that misbehave the way real ones do; what reaches users and the database. */
describe.each([
  ['ollama', startFakeOllama, (url: string) => ({ OLLAMA_BASE_URL: url })],
  ['openai', startFakeOpenAi, (url: string) => ({ TEXT_BACKEND: 'openai', OPENAI_BASE_URL: url, OPENAI_MODEL: 'llama3.2' })],
] as const)('a generation on the %s text backend', (_name, startText, textEnv) => {
  let text: FakeChatServer;
  let a1111: FakeAutomatic1111;
  let server: TestServer;

  beforeEach(async () => {
    text = await startText();
    a1111 = await startFakeAutomatic1111();
    server = await startTestServer({
      env: { ...textEnv(text.url), IMAGE_BACKEND: 'automatic1111', AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '128', IMAGE_HEIGHT: '96' },
    });
  });

  afterEach(async () => {
    await server.stop();
    await text.close();
    await a1111.close();
  });

  async function generate(input: { prompt: string; seed?: number } = { prompt: 'a lighthouse keeper who befriends a storm', seed: 42 }) {
    const { startGeneration } = await server.query(StartGenerationDocument, { input });
    const events: Progress[] = (await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done).map(
      (event) => event.generationProgress,
    );
    const { generationSession } = await server.query(GenerationSessionDocument, { id: startGeneration.id });
    return { events, last: events.at(-1)!, session: generationSession! };
  }

  it('saves and shows a story whose model output held NUL characters, without them', async () => {
    // A NUL in the plan's JSON (escaped, as JSON carries it) and a raw one in the page's text.
    text.options.replies.planner = JSON.stringify({ ...DEFAULT_PLAN, title: 'The Keeper\u0000' });
    text.options.replies.story = `Title: The Keeper\u0000\n\nMara had kept\u0000 the lighthouse for eleven winters, and she had never once spoken to the storm.`;
    const { last, session, events } = await generate();
    expect(last.status).toBe('COMPLETED');
    expect(session.story!.title).toBe('The Keeper');
    expect(session.story!.storyText).toBe('Mara had kept the lighthouse for eleven winters, and she had never once spoken to the storm.');
    expect(events.map((event) => event.storyTextDelta ?? '').join('')).not.toContain('\u0000');
  });

  it('warns on the session when the story was cut at the token limit', async () => {
    text.options.failures.story = { kind: 'cut-at-length', afterTokens: 30 };
    const { last, session } = await generate();
    expect(last.status).toBe('COMPLETED');
    expect(session.story!.storyText).toBe('Mara had kept the lighthouse on Gull Point for eleven winters, and she had never once spoken to the storm.');
    expect(last.warnings).toContain(
      'The story was cut short: the model llama3.2 stopped at its token limit mid-sentence, so the story ends at its last full sentence.',
    );
  });

  it('refuses a prompt holding NUL with BAD_USER_INPUT naming the field', async () => {
    const result = await server.request(StartGenerationDocument, { input: { prompt: 'a fox\u0000' } });
    expect(result.errors![0]).toMatchObject({
      message: 'The prompt contains the control character U+0000, which cannot be stored; remove it and try again.',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });

  it('paints a black picture again with another seed, and keeps the second', async () => {
    a1111.options.blackWhen = (call) => call.seed === 42;
    const { last, session } = await generate();
    expect(last).toMatchObject({ status: 'COMPLETED', warnings: [] });
    expect(a1111.calls.map((call) => call.seed).sort((a, b) => a - b)).toEqual([42, 43, 42 + 7919]);
    expect(session.story!.characterImage).toMatchObject({ seed: 42 + 7919 });
  });

  it('drops a picture that comes out black twice, with a warning naming the cause', async () => {
    a1111.options.blackWhen = (call) => call.prompt.startsWith(DEFAULT_REPLIES.character);
    const { last, session } = await generate();
    expect(last.status).toBe('COMPLETED');
    expect(session.story!.images.map((image) => image.imageType)).toEqual(['BACKGROUND']);
    expect(last.warnings).toEqual([
      'The character picture could not be painted, so the pages show their scenes without the character: it came out as one flat colour twice (as a safety filter or a float16 overflow in the model gives), so it was dropped',
    ]);
  });

  it.each([
    ['JPEG', { format: 'jpeg' as const }],
    ['WebP', { format: 'webp' as const }],
    ['a picture twice the size asked for', { scale: 2 }],
  ])('stores %s as a PNG of the recorded size', async (_kind, misbehaviour) => {
    Object.assign(a1111.options, misbehaviour);
    const { last, session } = await generate();
    expect(last.status).toBe('COMPLETED');
    expect(session.story!.images).toHaveLength(3);
    for (const image of session.story!.images) {
      expect({ width: image.width, height: image.height }).toEqual({ width: 128, height: 96 });
      const response = await fetch(image.url);
      expect(response.headers.get('content-type')).toBe('image/png');
      const metadata = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
      expect({ format: metadata.format, width: metadata.width, height: metadata.height }).toEqual({ format: 'png', width: 128, height: 96 });
    }
  });
});
