import fs from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createChatBackend } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { modelServerCall } from '../../src/adapters/http/model-server-fetch.js';
import { ChatModelClient, REASONING_ALLOWANCE_TOKENS } from '../../src/services/text/chat-model-client.js';
import { StoryAgents } from '../../src/services/text/story-agents.js';
import { CharacterDistance, CharacterSide } from '../../src/entities/index.js';
import { TextGenerationError, VisualSubject, type BookPlan } from '../../src/ports/text-generator.js';
import { estimateClipTokens } from '../../src/services/text/clip-tokens.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES, startFakeOllama, type FakeChatServer, type FakeOllamaOptions } from '../support/fake-ollama.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import { buildTinyGgufModel, type TinyGgufModel } from '../support/tiny-gguf-model.js';
import { FinishReason, type ChatBackend } from '../../src/ports/chat-backend.js';
import { HumanMessage, SystemMessage } from '@langchain/core/messages';

/**
 * One suite, every text backend: each misbehaviour real model servers show
 * (reasoning, chatter, cut-off answers, stray characters, stalls, slow
 * starts, errors) is replayed by a stand-in speaking the backend's real
 * protocol, and the agents must give the same right answer on each.
 */
const BACKENDS = [
  {
    name: 'ollama',
    start: (options?: Partial<FakeOllamaOptions>) => startFakeOllama(options),
    env: (url: string) => ({ TEXT_BACKEND: 'ollama', OLLAMA_BASE_URL: url }),
    timeoutVariable: 'OLLAMA_REQUEST_TIMEOUT_MS',
    label: (url: string) => `Ollama at ${url}`,
  },
  {
    name: 'openai',
    start: (options?: Partial<FakeOllamaOptions>) => startFakeOpenAi(options),
    env: (url: string) => ({ TEXT_BACKEND: 'openai', OPENAI_BASE_URL: url, OPENAI_MODEL: 'llama3.2', OPENAI_API_KEY: 'sk-test' }),
    timeoutVariable: 'OPENAI_REQUEST_TIMEOUT_MS',
    label: (url: string) => `The OpenAI-compatible server at ${url}`,
  },
] as const;

const silentLogger = pino({ level: 'silent' });

const REASONING = Array.from({ length: 60 }, (_, i) => `Step ${i}: the user wants a story, I should plan it carefully.`).join(' ');
const SHORT_REASONING = 'Okay, the user wants a story about a lighthouse keeper. I will keep it warm.';
const STORY_BODY = DEFAULT_REPLIES.story.split('\n').slice(2).join('\n');

const ONE_PAGE_PLAN: BookPlan = {
  title: 'The Lighthouse Keeper and the Storm',
  characterSheet: 'an elderly lighthouse keeper woman, yellow raincoat',
  pages: [
    {
      outline: 'Mara befriends the storm.',
      sceneDescription: 'a lighthouse at dusk',
      characterSide: CharacterSide.CENTRE,
      characterDistance: CharacterDistance.NEAR,
    },
  ],
};

async function failure(run: () => Promise<unknown>): Promise<TextGenerationError> {
  const error = await run().then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TextGenerationError);
  return error as TextGenerationError;
}

describe.each(BACKENDS)('the $name text backend', (backend) => {
  let fake: FakeChatServer;

  beforeEach(async () => {
    fake = await backend.start();
  });

  afterEach(async () => {
    await fake.close();
  });

  function agents(env: Record<string, string> = {}): StoryAgents {
    const config = loadConfig({ NODE_ENV: 'test', ...backend.env(fake.url), ...env });
    return new StoryAgents(
      new ChatModelClient(createChatBackend(config, backend.name, silentLogger), config.text.stallTimeoutMs, modelServerCall),
      config.ollama.storyMaxChars,
    );
  }

  /** A one-page book's page, as the story agent writes it; a title line the model adds is not part of the text. */
  async function write(generator = agents()): Promise<{ storyText: string; warnings: string[]; streamed: string }> {
    let streamed = '';
    const draft = await generator.writePage({
      plan: ONE_PAGE_PLAN,
      index: 0,
      textsBefore: [],
      style: null,
      signal: new AbortController().signal,
      onText: (delta) => (streamed += delta),
    });
    return { storyText: draft.text, warnings: draft.warnings, streamed };
  }

  function describeCharacter(generator = agents()): Promise<string> {
    return generator.describe(VisualSubject.CHARACTER, { text: STORY_BODY, style: null, signal: new AbortController().signal });
  }

  it('writes a story and describes the character with a well-behaved model', async () => {
    const draft = await write();
    expect(draft).toMatchObject({ storyText: STORY_BODY, warnings: [] });
    expect(draft.streamed.trim()).toBe(STORY_BODY);
    expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
    // The description is asked for as structured output.
    expect(fake.requests.find((request) => request.agent === 'character')!.structured).toBe(true);
  });

  describe('planning a book', () => {
    const plan = (pageCount: number, generator = agents()) =>
      generator.planBook({ prompt: 'a lighthouse keeper', style: 'watercolor', pageCount, signal: new AbortController().signal });

    it('plans exactly the pages asked for through structured output, with a character sheet CLIP keeps whole', async () => {
      const book = await plan(6);
      expect(book.title).toBe(DEFAULT_PLAN.title);
      expect(book.pages).toHaveLength(6);
      expect(book.pages[1]).toEqual({
        outline: DEFAULT_PLAN.pages[1].outline,
        sceneDescription: DEFAULT_PLAN.pages[1].scene,
        characterSide: CharacterSide.CENTRE,
        characterDistance: CharacterDistance.FAR,
      });
      expect(estimateClipTokens(book.characterSheet)).toBeLessThanOrEqual(40);
      expect(fake.requests.map((request) => [request.agent, request.structured, request.maxPages])).toEqual([['planner', true, 6]]);
      expect(fake.requests[0].messages.at(-1)?.content).toContain('Pages: 6');
    });

    it('cuts a long character sheet at a phrase so it stays within ~40 CLIP tokens', async () => {
      const longSheet = Array.from({ length: 20 }, (_, i) => `detail number ${i}`).join(', ');
      fake.options.replies.planner = JSON.stringify({ ...DEFAULT_PLAN, characterSheet: longSheet });
      const book = await plan(2);
      expect(estimateClipTokens(book.characterSheet)).toBeLessThanOrEqual(40);
      expect(longSheet.startsWith(book.characterSheet)).toBe(true);
      expect(book.characterSheet).toMatch(/detail number \d+$/);
    });

    it('repairs a plan with the wrong number of pages once', async () => {
      const twoPages = JSON.stringify({ ...DEFAULT_PLAN, pages: DEFAULT_PLAN.pages.slice(0, 2) });
      const threePages = JSON.stringify({ ...DEFAULT_PLAN, pages: DEFAULT_PLAN.pages.slice(0, 3) });
      fake.options.rawReplies.planner = [twoPages, threePages];
      expect((await plan(3)).pages).toHaveLength(3);
      expect(fake.requests).toHaveLength(2);
      expect(fake.requests[1].messages.at(-1)?.content).toMatch(/could not be used: pages/);
    });

    it('fails with a message a user can act on when the plan is unusable after the repair attempt', async () => {
      fake.options.rawReplies.planner = ['Sure! Here is a lovely plan for your book.'];
      const error = await failure(() => plan(3));
      expect(error.failure).toBe('bad-output');
      expect(error.message).toMatch(/did not give the JSON answer asked for while planning the book \(twice/);
    });
  });

  describe('reasoning models', () => {
    it('keeps reasoning that ends with only a closing </think> out of the story, the title and the stream', async () => {
      fake.options.reasoning.story = { text: SHORT_REASONING, style: 'bare-close', obeysThinkFalse: false };
      const draft = await write();
      expect(draft.storyText).toBe(STORY_BODY);
      expect(draft.streamed.trim()).toBe(STORY_BODY);
      expect(draft.streamed).not.toMatch(/think|Step 0/);
    });

    it('keeps long reasoning ended by a bare </think> out of the saved story; once the model is known to reason, out of the stream too', async () => {
      fake.options.reasoning.story = { text: REASONING, style: 'bare-close', obeysThinkFalse: false };
      const generator = agents();
      const first = await write(generator);
      expect(first).toMatchObject({ storyText: STORY_BODY });
      const second = await write(generator);
      expect(second).toMatchObject({ storyText: STORY_BODY });
      expect(second.streamed.trim()).toBe(STORY_BODY);
    });

    it('keeps reasoning that ends with only a closing </think> out of a description', async () => {
      fake.options.rawReplies.character = [`${SHORT_REASONING}\n</think>\n${JSON.stringify({ prompt: DEFAULT_REPLIES.character })}`];
      expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
    });

    it('asks again with room to answer when reasoning inline used up the limit before the answer', async () => {
      fake.options.reasoning.character = { text: REASONING, style: 'bare-close', obeysThinkFalse: false };
      expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
      expect(fake.requests.filter((request) => request.agent === 'character').map((request) => request.maxTokens)).toEqual([
        400,
        400 + REASONING_ALLOWANCE_TOKENS,
      ]);
    });

    it('gives a model that reasons in a field of its own, and cannot be told not to, room to answer', async () => {
      // 60 sentences of reasoning are more than the description's own token limit.
      fake.options.reasoning.character = { text: REASONING, style: 'field', obeysThinkFalse: false };
      expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
      const limits = fake.requests.filter((request) => request.agent === 'character').map((request) => request.maxTokens);
      expect(limits).toEqual([400, 400 + REASONING_ALLOWANCE_TOKENS]);
      // Once known to reason, the next call gets the room at once.
      await describeCharacter(agents());
      const generator = agents();
      await describeCharacter(generator);
      await describeCharacter(generator);
      expect(fake.requests.filter((request) => request.agent === 'character').at(-1)!.maxTokens).toBe(400 + REASONING_ALLOWANCE_TOKENS);
    });

    it('never shows reasoning sent in a field of its own', async () => {
      fake.options.reasoning.story = { text: REASONING, style: 'field', obeysThinkFalse: false };
      const draft = await write();
      expect(draft.streamed.trim()).toBe(STORY_BODY);
      expect(draft.storyText).toBe(STORY_BODY);
    });

    it('names reasoning as the cause when a model reasons past every limit and never answers', async () => {
      fake.options.reasoning.character = { text: `${REASONING} `.repeat(12), style: 'field', obeysThinkFalse: false };
      const error = await failure(() => describeCharacter());
      expect(error.failure).toBe('bad-output');
      expect(error.message).toMatch(
        /^Model llama3\.2 spent its whole token limit reasoning and gave no answer while describing the character; choose a model that can answer without reasoning/,
      );
    });
  });

  describe('chatty answers', () => {
    it('strips a lead-in, code fences and a markdown title from the story', async () => {
      fake.options.replies.story = `Sure! Here is your story:\n\n\`\`\`\n**Title:** The Lighthouse Keeper and the Storm\n\n${STORY_BODY}\n\`\`\`\n`;
      const draft = await write();
      expect(draft.storyText).toBe(STORY_BODY);
      expect(draft.streamed.trim()).toBe(STORY_BODY);
    });

    it('takes a title labelled in another language', async () => {
      fake.options.replies.story = `Titel: Der Leuchtturmwärter\n\n${STORY_BODY}`;
      expect(await write()).toMatchObject({ storyText: STORY_BODY });
    });

    it('repairs a description that came back as chatter instead of JSON, asking once more', async () => {
      fake.options.rawReplies.character = [
        `Sure! Here's the prompt:\n\`\`\`\n${DEFAULT_REPLIES.character}\n\`\`\``,
        JSON.stringify({ prompt: DEFAULT_REPLIES.character }),
      ];
      expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
      const [, repair] = fake.requests.filter((request) => request.agent === 'character');
      expect(repair.messages.at(-1)!.content).toMatch(/^Your answer could not be used: the answer held no JSON object\./);
    });

    it('reads a JSON answer wrapped in fences and chatter', async () => {
      fake.options.rawReplies.character = [`Here you go:\n\`\`\`json\n{"prompt": "${DEFAULT_REPLIES.character}"}\n\`\`\``];
      expect(await describeCharacter()).toBe(DEFAULT_REPLIES.character);
      expect(fake.requests.filter((request) => request.agent === 'character')).toHaveLength(1);
    });

    it('fails with the last problem when the repair does not help either', async () => {
      fake.options.rawReplies.character = ['{"description": "a fox"}'];
      const error = await failure(() => describeCharacter());
      expect(error.message).toBe(
        'Model llama3.2 did not give the JSON answer asked for while describing the character (twice; last: prompt: Invalid input: expected string, received undefined); try again or choose another ' +
          (backend.name === 'ollama' ? 'OLLAMA_MODEL' : 'OPENAI_MODEL'),
      );
    });
  });

  describe('cut-off answers', () => {
    it('cuts a story stopped at the token limit back to its last full sentence, with a warning', async () => {
      // Token 30 falls inside the second sentence of the body.
      fake.options.failures.story = { kind: 'cut-at-length', afterTokens: 30 };
      const draft = await write();
      expect(draft.storyText).toBe('Mara had kept the lighthouse on Gull Point for eleven winters, and she had never once spoken to the storm.');
      expect(draft.warnings).toEqual([
        'The story was cut short: the model llama3.2 stopped at its token limit mid-sentence, so the story ends at its last full sentence.',
      ]);
    });

    it('cuts a Japanese story at 。 when STORY_MAX_CHARS is reached, with a warning', async () => {
      const sentence = '灯台守のマラは十一回の冬を岬で過ごし、嵐と話したことは一度もなかった。';
      fake.options.replies.story = `タイトル：灯台守と嵐\n\n${sentence.repeat(12)}`;
      const draft = await write(agents({ STORY_MAX_CHARS: '200' }));
      expect(draft.storyText).toBe(sentence.repeat(Math.floor(200 / sentence.length)));
      expect(draft.warnings).toEqual(['The story reached STORY_MAX_CHARS (200 characters) and was cut after its last full sentence.']);
    });
  });

  describe('characters a database or terminal cannot take', () => {
    it('removes NUL and other control characters from the story, its title, what is streamed and descriptions', async () => {
      fake.options.replies.story = `Title: The Light\u0000house Keeper\n\nMara\u0000 had kept the light\u0007house for eleven winters, and she had never once spoken to the storm.`;
      fake.options.replies.character = 'an elderly\u0000 lighthouse keeper';
      const draft = await write();
      expect(draft.storyText).toBe('Mara had kept the lighthouse for eleven winters, and she had never once spoken to the storm.');
      expect(draft.streamed).not.toContain('\u0000');
      expect(draft.streamed).not.toContain('\u0007');
      expect(await describeCharacter()).toBe('an elderly lighthouse keeper');
    });
  });

  describe('slow and stalled servers', () => {
    it.each([['stall-mid-stream' as const], ['stall-after-headers' as const]])(
      'says the model server stopped answering when it goes silent (%s), without waiting for the total timeout',
      async (kind) => {
        fake.options.failures.story = { kind };
        const error = await failure(() => write(agents({ MODEL_STALL_TIMEOUT_MS: '300' })));
        expect(error.failure).toBe('stalled');
        expect(error.transient).toBe(false);
        expect(error.message).toBe(
          `${backend.label(fake.url)} stopped answering while writing the story (model llama3.2): nothing arrived for 0 s (MODEL_STALL_TIMEOUT_MS); check that the server is not stuck, then try again`,
        );
      },
    );

    it('applies the configured request timeout to a server slow to send its first header', async () => {
      fake.options.firstTokenDelayMs.story = 5000;
      const error = await failure(() => write(agents({ [backend.timeoutVariable]: '1000' })));
      expect(error.failure).toBe('timeout');
      expect(error.message).toBe(
        `${backend.label(fake.url)} did not finish writing the story within 1000 ms (model llama3.2); raise ${backend.timeoutVariable} or use a smaller model`,
      );
    });

    it('waits past the stall limit for a server that has not answered yet (a model loading)', async () => {
      // The stall limit starts at the response headers: a first answer 2.5 s away is waited for. The limit is
      // not tighter than 1 s, so a busy machine's pause between two chunks is not taken for a stall.
      fake.options.firstTokenDelayMs.story = 2500;
      const draft = await write(agents({ MODEL_STALL_TIMEOUT_MS: '1000' }));
      expect(draft.storyText).toBe(STORY_BODY);
    });
  });

  describe('errors a user can act on', () => {
    it('says when the server is not reachable', async () => {
      await fake.close();
      const error = await failure(() => write());
      expect(error.failure).toBe('unreachable');
      expect(error.message).toMatch(
        new RegExp(
          `^${backend
            .label(fake.url)
            .replace(' at ', ' is not reachable at ')
            .replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: start it`,
        ),
      );
    });

    it('says when the model is missing, naming the setting to change', async () => {
      fake.options.model = 'another-model';
      const error = await failure(() => write());
      expect(error.failure).toBe('model-missing');
      expect(error.message).toContain('"llama3.2"');
      expect(error.message).toContain(backend.name === 'ollama' ? 'ollama pull llama3.2' : 'set OPENAI_MODEL');
      await expect(agents().checkAvailable()).rejects.toMatchObject({ failure: 'model-missing' });
    });

    it('passes on a server error with its status and message', async () => {
      fake.options.failures.story = { kind: 'http-error', status: 500, message: 'CUDA out of memory' };
      const error = await failure(() => write());
      expect(error.failure).toBe('server-error');
      expect(error.message).toContain(`${backend.label(fake.url)} failed while writing the story with model llama3.2 (HTTP 500: `);
      expect(error.message).toContain('CUDA out of memory');
    });

    it('does not save a story whose stream ended without its closing line', async () => {
      fake.options.failures.story = { kind: 'end-without-done' };
      const error = await failure(() => write());
      expect(error.failure).toBe('stream-dropped');
      expect(error.message).toContain(fake.url);
    });

    it('finds the model on a server that has it', async () => {
      await expect(agents().checkAvailable()).resolves.toBeUndefined();
    });
  });
});

describe('the Ollama backend', () => {
  it('asks reasoning models not to think, and a model that obeys spends no tokens on it', async () => {
    const fake = await startFakeOllama({ reasoning: { character: { text: REASONING, style: 'field', obeysThinkFalse: true } } });
    try {
      const config = loadConfig({ NODE_ENV: 'test', OLLAMA_BASE_URL: fake.url });
      const generator = new StoryAgents(
        new ChatModelClient(createChatBackend(config, 'ollama', silentLogger), config.text.stallTimeoutMs, modelServerCall),
        config.ollama.storyMaxChars,
      );
      expect(await generator.describe(VisualSubject.CHARACTER, { text: STORY_BODY, style: null, signal: new AbortController().signal })).toBe(
        DEFAULT_REPLIES.character,
      );
      expect(fake.requests.map((request) => [request.think, request.maxTokens])).toEqual([[false, 400]]);
    } finally {
      await fake.close();
    }
  });
});

describe('the embedded text backend (node-llama-cpp with a tiny GGUF model built here)', () => {
  let model: TinyGgufModel;
  const backends: ChatBackend[] = [];

  beforeAll(async () => {
    model = await buildTinyGgufModel();
  });

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close?.()));
  });

  afterAll(async () => {
    await model.remove();
  });

  /** Threads: 1, since the test machine is shared; a seed, so each test sees the same text every run. */
  function embedded(env: Record<string, string> = {}): { agents: StoryAgents; client: ChatModelClient } {
    const config = loadConfig({
      NODE_ENV: 'test',
      TEXT_BACKEND: 'embedded',
      EMBEDDED_MODEL_FILE: model.file,
      EMBEDDED_THREADS: '1',
      EMBEDDED_SEED: '7',
      ...env,
    });
    const backend = createChatBackend(config, 'embedded', silentLogger);
    backends.push(backend);
    const client = new ChatModelClient(backend, config.text.stallTimeoutMs, modelServerCall);
    return { agents: new StoryAgents(client, config.ollama.storyMaxChars), client };
  }

  function writePage(agents: StoryAgents, signal: AbortSignal) {
    return agents.writePage({ plan: ONE_PAGE_PLAN, index: 0, textsBefore: [], style: null, signal, onText: () => {} });
  }

  /** A plain streamed reply through the provider-neutral client, text shown as it comes. */
  function complete(client: ChatModelClient, maxTokens: number, signal: AbortSignal, onText: (text: string) => void = () => {}) {
    const messages = [new SystemMessage('You write stories for children.'), new HumanMessage('A fox who counts the stars.')];
    return client.complete({ messages, activity: 'writing the story', maxTokens, signal, onText });
  }

  it('loads the model with node-llama-cpp 3.21.1 and streams the tokens it generates, cut at the token limit', async () => {
    const installed = JSON.parse(await fs.readFile(new URL('../../node_modules/node-llama-cpp/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(installed.version).toBe('3.21.1');
    const { client } = embedded();
    await client.checkAvailable();
    const pieces: string[] = [];
    const completion = await complete(client, 40, new AbortController().signal, (text) => pieces.push(text));
    // The tiny model seldom ends its turn on its own: 40 tokens, one chunk each (fewer where bytes of one character were joined).
    expect(completion.finish).toBe(FinishReason.Length);
    expect(completion.tokens).toBeGreaterThan(20);
    expect(completion.tokens).toBeLessThanOrEqual(40);
    expect(pieces.length).toBeGreaterThan(20);
    expect(pieces.join('')).toBe(completion.text);
  });

  it('writes a page through the story agent', async () => {
    const { agents } = embedded({ STORY_MAX_CHARS: '300' });
    const draft = await writePage(agents, new AbortController().signal);
    expect(draft.text.length).toBeGreaterThanOrEqual(20);
    expect(draft.text.length).toBeLessThanOrEqual(300);
    expect(draft.streamed!.tokens).toBeGreaterThan(10);
  });

  it('stops the model when the story reaches STORY_MAX_CHARS, cuts it at a sentence end, and frees the model', async () => {
    // Past the 1200 characters an untitled start is held back, the text flows; at 1300 the reader stops early.
    const { agents } = embedded({ STORY_MAX_CHARS: '1300' });
    const draft = await writePage(agents, new AbortController().signal);
    expect(draft.text.length).toBeLessThanOrEqual(1300);
    expect(draft.warnings).toEqual(['The story reached STORY_MAX_CHARS (1300 characters) and was cut after its last full sentence.']);
    expect((await agents.planBook({ prompt: 'a storm', style: null, pageCount: 1, signal: new AbortController().signal })).pages).toHaveLength(1);
  });

  it('answers structured output with JSON the grammar holds to the schema: a plan of exactly the pages asked for', async () => {
    const { agents } = embedded();
    for (const pageCount of [1, 3]) {
      const plan = await agents.planBook({ prompt: 'a fox who counts the stars', style: null, pageCount, signal: new AbortController().signal });
      expect(plan.pages).toHaveLength(pageCount);
      expect(plan.title).not.toBe('');
      expect(estimateClipTokens(plan.characterSheet)).toBeLessThanOrEqual(40);
      for (const page of plan.pages) {
        expect(Object.values(CharacterSide)).toContain(page.characterSide);
        expect(Object.values(CharacterDistance)).toContain(page.characterDistance);
        expect(page.sceneDescription).toMatch(/[a-z]/i);
      }
    }
    expect(await agents.describe(VisualSubject.SCENE, { text: STORY_BODY, style: null, signal: new AbortController().signal })).toMatch(/[a-z]/i);
  });

  it('stops generating when cancelled, and the model is free for the next generation at once', async () => {
    const { agents, client } = embedded();
    const controller = new AbortController();
    const reason = new Error('cancelled by the test');
    let piecesAfterCancel = 0;
    // Thousands of tokens unless cancelled: the tiny model seldom ends its turn.
    const writing = complete(client, 5000, controller.signal, () => {
      if (controller.signal.aborted) piecesAfterCancel += 1;
      else controller.abort(reason);
    });
    await expect(writing).rejects.toBe(reason);
    expect(piecesAfterCancel).toBe(0);
    // Cancelled while waiting for its turn: leaves the line without waiting for the one generating.
    const first = new AbortController();
    const second = new AbortController();
    const running = agents.planBook({ prompt: 'a storm', style: null, pageCount: 2, signal: first.signal });
    const waiting = agents.planBook({ prompt: 'a storm', style: null, pageCount: 2, signal: second.signal });
    second.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect((await running).pages).toHaveLength(2);
  });

  it('says how to get the model when its file is missing, naming the file', async () => {
    const missing = path.join(path.dirname(model.file), 'models', 'text', 'absent.gguf');
    const { agents } = embedded({ EMBEDDED_MODEL_FILE: missing });
    for (const run of [() => agents.checkAvailable(), () => writePage(agents, new AbortController().signal)]) {
      const error = await failure(run);
      expect(error.failure).toBe('model-missing');
      expect(error.transient).toBe(false);
      expect(error.message).toBe(
        `The embedded story model is not downloaded yet: ${missing} is missing. Run \`story-agent setup\` or press Download on the page (or set EMBEDDED_MODEL_FILE to a GGUF model you have, or use Ollama: TEXT_BACKEND=ollama)`,
      );
    }
  });

  it('says a damaged or incomplete model file is unusable, with llama.cpp’s reason, and picks up a good file once it is there', async () => {
    const dir = path.dirname(model.file);
    const notGguf = path.join(dir, 'not-gguf.gguf');
    await fs.writeFile(notGguf, Buffer.from('<!DOCTYPE html><html>rate limited</html>'));
    const notGgufError = await failure(() => embedded({ EMBEDDED_MODEL_FILE: notGguf }).agents.checkAvailable());
    expect(notGgufError.failure).toBe('model-missing');
    expect(notGgufError.message).toBe(
      `The embedded model file ${notGguf} is not a usable GGUF model (it does not start with the GGUF signature): it is damaged or incomplete. Delete it and download it again (\`story-agent setup\`, or Download on the page), or set EMBEDDED_MODEL_FILE to another GGUF file`,
    );

    // An interrupted download: the header is whole, the tensors are not.
    const truncated = path.join(dir, 'truncated.gguf');
    const whole = await fs.readFile(model.file);
    await fs.writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const { agents } = embedded({ EMBEDDED_MODEL_FILE: truncated });
    await agents.checkAvailable();
    const truncatedError = await failure(() => writePage(agents, new AbortController().signal));
    expect(truncatedError.failure).toBe('model-missing');
    expect(truncatedError.message).toContain(`The embedded model file ${truncated} is not a usable GGUF model (`);
    expect(truncatedError.message).toMatch(/not within the file bounds, model is corrupted or incomplete/);

    // The download finished since: the same backend loads it now.
    await fs.writeFile(truncated, whole);
    expect((await agents.planBook({ prompt: 'a storm', style: null, pageCount: 1, signal: new AbortController().signal })).pages).toHaveLength(1);
  });
});
