import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AutoTextBackend } from '../../src/adapters/text/auto-text-backend.js';
import { modelNamesIn, type OllamaProbeResult } from '../../src/adapters/text/ollama-probe.js';
import type { TextGenerator } from '../../src/ports/text-generator.js';

const URL = 'http://127.0.0.1:11434';
const MODEL = 'llama3.2';
const GGUF = '/data/models/text/qwen2.5-1.5b-instruct-q4_k_m.gguf';
const RECHECK_MS = 5000;

/** A text generator that only says which one it is: the chooser hands these out and never calls them. */
function generator(name: string): TextGenerator {
  const refuse = () => Promise.reject(new Error(`${name} is not called by the chooser`));
  return { planBook: refuse, writePage: refuse, describe: refuse, checkAvailable: refuse };
}

interface LogLine {
  level: number;
  msg: string;
  textBackend?: string;
  chosen?: string;
  reason?: string;
  ollamaBaseUrl?: string;
  ollamaModel?: string;
}

/**
 * An Ollama that answers or not, with the models the test gives it, counting the looks; an embedded
 * GGUF on disk or not; a clock the test moves; the log lines as objects.
 */
function chooser(options: { ollamaUp?: boolean; ollamaModels?: string[]; ggufOnDisk?: boolean; ollamaModel?: string; recheckMs?: number } = {}) {
  // `held`: the next probe reads what is there now but answers only when the test calls release().
  const ollama = {
    up: options.ollamaUp ?? false,
    models: options.ollamaModels ?? [`${MODEL}:latest`],
    probes: 0,
    held: null as Promise<void> | null,
    hold() {
      let release = () => {};
      this.held = new Promise<void>((resolve) => {
        release = resolve;
      });
      return { release };
    },
  };
  const disk = { gguf: options.ggufOnDisk ?? true };
  const clock = { now: 0 };
  const freed: number[] = [];
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const texts = { ollama: generator('ollama'), embedded: generator('embedded') };
  const auto = new AutoTextBackend(
    {
      ...texts,
      probeOllama: async (): Promise<OllamaProbeResult> => {
        ollama.probes++;
        const answer: OllamaProbeResult = ollama.up ? { answers: true, models: [...ollama.models] } : { answers: false, reason: 'ECONNREFUSED' };
        const held = ollama.held;
        ollama.held = null;
        await held;
        return answer;
      },
      hasEmbeddedModel: async () => disk.gguf,
      releaseEmbedded: async () => void freed.push(clock.now),
    },
    { ollamaBaseUrl: URL, ollamaModel: options.ollamaModel ?? MODEL, embeddedModelFile: GGUF, recheckMs: options.recheckMs ?? RECHECK_MS },
    logger,
    () => clock.now,
  );
  const choices = () => lines.filter((line) => line.msg.startsWith('text backend: auto'));
  return { auto, ollama, disk, clock, freed, lines, choices, texts };
}

/** One row of the choice table: what is there, and the lease and the one log line it gives. */
interface Row {
  name: string;
  ollamaUp: boolean;
  ollamaModels?: string[];
  ollamaModel?: string;
  ggufOnDisk: boolean;
  backend: 'ollama' | 'embedded';
  modelPresent: boolean;
  level: number;
  reason: string;
  msg: string;
}

const PULL = (model: string) => `\`ollama pull ${model}\``;
const ROWS: Row[] = [
  {
    name: 'Ollama with the model (no tag asked: :latest), GGUF on disk → Ollama',
    ollamaUp: true,
    ggufOnDisk: true,
    backend: 'ollama',
    modelPresent: true,
    level: 30,
    reason: 'ollama-has-model',
    msg: `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${URL} with ${MODEL})`,
  },
  {
    name: 'Ollama with the model, no GGUF → Ollama',
    ollamaUp: true,
    ggufOnDisk: false,
    backend: 'ollama',
    modelPresent: true,
    level: 30,
    reason: 'ollama-has-model',
    msg: `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${URL} with ${MODEL})`,
  },
  {
    name: 'Ollama with the exact tag asked for → Ollama',
    ollamaUp: true,
    ollamaModels: ['qwen2.5:1.5b', 'llama3.2:latest'],
    ollamaModel: 'qwen2.5:1.5b',
    ggufOnDisk: true,
    backend: 'ollama',
    modelPresent: true,
    level: 30,
    reason: 'ollama-has-model',
    msg: `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${URL} with qwen2.5:1.5b)`,
  },
  {
    name: 'Ollama with another tag of the model only (qwen2.5:1.5b-instruct for qwen2.5:1.5b), GGUF on disk → embedded',
    ollamaUp: true,
    ollamaModels: ['qwen2.5:1.5b-instruct'],
    ollamaModel: 'qwen2.5:1.5b',
    ggufOnDisk: true,
    backend: 'embedded',
    modelPresent: true,
    level: 30,
    reason: 'ollama-lacks-model',
    msg: `text backend: auto, now embedded (TEXT_BACKEND is unset and Ollama at ${URL} has no model qwen2.5:1.5b; ${PULL('qwen2.5:1.5b')} to use it): the embedded model ${GGUF} is used`,
  },
  {
    name: 'Ollama without any model, GGUF on disk → embedded',
    ollamaUp: true,
    ollamaModels: [],
    ggufOnDisk: true,
    backend: 'embedded',
    modelPresent: true,
    level: 30,
    reason: 'ollama-lacks-model',
    msg: `text backend: auto, now embedded (TEXT_BACKEND is unset and Ollama at ${URL} has no model ${MODEL}; ${PULL(MODEL)} to use it): the embedded model ${GGUF} is used`,
  },
  {
    name: 'Ollama without the model, no GGUF → Ollama, to pull into, with a warning',
    ollamaUp: true,
    ollamaModels: ['mistral:latest'],
    ggufOnDisk: false,
    backend: 'ollama',
    modelPresent: false,
    level: 40,
    reason: 'ollama-needs-pull',
    msg: `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama at ${URL} has no model ${MODEL}, and no embedded model is at ${GGUF}): pull it from the set-up panel or with ${PULL(MODEL)}; generations wait for a pull the panel runs, and fail without one`,
  },
  {
    name: 'no Ollama, GGUF on disk → embedded',
    ollamaUp: false,
    ggufOnDisk: true,
    backend: 'embedded',
    modelPresent: true,
    level: 30,
    reason: 'ollama-down',
    msg: `text backend: auto, now embedded (TEXT_BACKEND is unset and no Ollama answers at ${URL}: ECONNREFUSED); an Ollama started later is used from the next generation (looked for again after 5 s), no restart needed; set TEXT_BACKEND to choose`,
  },
  {
    name: 'no Ollama, no GGUF → embedded, whose download a generation waits for',
    ollamaUp: false,
    ggufOnDisk: false,
    backend: 'embedded',
    modelPresent: false,
    level: 30,
    reason: 'ollama-down',
    msg: `text backend: auto, now embedded (TEXT_BACKEND is unset and no Ollama answers at ${URL}: ECONNREFUSED); an Ollama started later is used from the next generation (looked for again after 5 s), no restart needed; set TEXT_BACKEND to choose`,
  },
];

describe('the choice table of TEXT_BACKEND unset', () => {
  it.each(ROWS)('$name', async (row) => {
    const { auto, texts, choices } = chooser(row);
    const lease = await auto.forGeneration();
    expect(lease.backend).toBe(row.backend);
    expect(lease.text).toBe(texts[row.backend]);
    expect(lease.modelPresent).toBe(row.modelPresent);
    expect(auto.current).toBe(row.backend);
    expect(choices()).toEqual([
      expect.objectContaining({
        level: row.level,
        textBackend: 'auto',
        chosen: row.backend,
        reason: row.reason,
        ollamaBaseUrl: URL,
        ollamaModel: row.ollamaModel ?? MODEL,
        msg: row.msg,
      }),
    ]);
    lease.release();
  });
});

describe('the text backend when TEXT_BACKEND is unset', () => {
  it('gives a generation the embedded model while no Ollama answers, saying why once', async () => {
    const { auto, texts, choices } = chooser();
    const lease = await auto.forGeneration();
    expect(lease.backend).toBe('embedded');
    expect(lease.text).toBe(texts.embedded);
    expect(auto.current).toBe('embedded');
    expect(choices()).toEqual([
      expect.objectContaining({
        level: 30,
        chosen: 'embedded',
        reason: 'ollama-down',
        msg: expect.stringMatching(
          /^text backend: auto, now embedded \(TEXT_BACKEND is unset and no Ollama answers at http:\/\/127\.0\.0\.1:11434: ECONNREFUSED\)/,
        ),
      }),
    ]);
    lease.release();
  });

  it('looks at Ollama once per interval: generations in a burst, even at the same moment, share one look', async () => {
    const { auto, ollama, clock } = chooser();
    await Promise.all([auto.forGeneration(), auto.forGeneration(), auto.forGeneration()]);
    expect(ollama.probes).toBe(1);
    clock.now = RECHECK_MS - 1;
    await auto.forGeneration();
    await auto.generatorNow();
    expect(ollama.probes).toBe(1);
    clock.now = RECHECK_MS;
    await Promise.all([auto.forGeneration(), auto.forGeneration()]);
    expect(ollama.probes).toBe(2);
  });

  it('with an interval of 0, looks at every generation', async () => {
    const { auto, ollama } = chooser({ recheckMs: 0 });
    await auto.forGeneration();
    await auto.forGeneration();
    expect(ollama.probes).toBe(2);
  });

  it('moves to an Ollama started later from the next generation once the look is stale, with one log line for the change', async () => {
    const { auto, ollama, clock, texts, choices } = chooser();
    const first = await auto.forGeneration();
    ollama.up = true;
    // Within the interval the earlier look stands.
    expect((await auto.forGeneration()).backend).toBe('embedded');
    clock.now = RECHECK_MS;
    const next = await auto.forGeneration();
    expect(next.backend).toBe('ollama');
    expect(next.text).toBe(texts.ollama);
    clock.now = 3 * RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('ollama');
    expect(auto.current).toBe('ollama');
    // The generation that started on the embedded model keeps it.
    expect(first.text).toBe(texts.embedded);
    expect(choices().map((line) => [line.level, line.chosen, line.msg])).toEqual([
      [30, 'embedded', expect.stringContaining('now embedded')],
      [30, 'ollama', `text backend: auto, now ollama (Ollama at ${URL} has ${MODEL} now): new generations use it; running ones finish on the embedded model`],
    ]);
  });

  it('goes back to the embedded model at the next generation when Ollama stops answering, with a warning that says why', async () => {
    const { auto, ollama, clock, texts, choices } = chooser({ ollamaUp: true });
    const onOllama = await auto.forGeneration();
    expect(onOllama.backend).toBe('ollama');
    ollama.up = false;
    clock.now = RECHECK_MS;
    const next = await auto.forGeneration();
    expect(next.backend).toBe('embedded');
    expect(next.text).toBe(texts.embedded);
    expect(choices().map((line) => [line.level, line.chosen, line.msg])).toEqual([
      [30, 'ollama', `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${URL} with ${MODEL})`],
      [
        40,
        'embedded',
        `text backend: auto, now embedded (Ollama stopped answering at ${URL}: ECONNREFUSED): new generations use the embedded model until Ollama answers again`,
      ],
    ]);
  });

  it('frees the embedded model once Ollama is chosen and the last generation on the embedded model has ended, and never while one runs', async () => {
    const { auto, ollama, clock, freed } = chooser();
    const first = await auto.forGeneration();
    const second = await auto.forGeneration();
    ollama.up = true;
    clock.now = RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('ollama');
    expect(freed).toEqual([]);
    first.release();
    first.release();
    expect(freed).toEqual([]);
    second.release();
    expect(freed).toEqual([RECHECK_MS]);
    // Nothing of the embedded model is loaded any more: later looks free nothing again.
    clock.now = 2 * RECHECK_MS;
    await auto.forGeneration();
    expect(freed).toEqual([RECHECK_MS]);
  });

  it('frees nothing when the embedded model was never used, and nothing while the embedded model is the choice', async () => {
    const up = chooser({ ollamaUp: true });
    (await up.auto.forGeneration()).release();
    expect(up.freed).toEqual([]);
    const down = chooser();
    (await down.auto.forGeneration()).release();
    expect(down.freed).toEqual([]);
  });

  it('moves to Ollama at the next look once the model appears in its list (ollama pull by hand), saying so once', async () => {
    const { auto, ollama, clock, choices } = chooser({ ollamaUp: true, ollamaModels: [] });
    const onEmbedded = await auto.forGeneration();
    expect(onEmbedded.backend).toBe('embedded');
    ollama.models = [`${MODEL}:latest`];
    expect((await auto.forGeneration()).backend).toBe('embedded');
    clock.now = RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('ollama');
    expect(choices().map((line) => [line.level, line.reason, line.msg])).toEqual([
      [30, 'ollama-lacks-model', expect.stringContaining(`has no model ${MODEL}`)],
      [
        30,
        'ollama-has-model',
        `text backend: auto, now ollama (Ollama at ${URL} has ${MODEL} now): new generations use it; running ones finish on the embedded model`,
      ],
    ]);
  });

  it('after forget(), the next generation looks again at once, and a look that started before it is not kept', async () => {
    const { auto, ollama, clock, choices } = chooser({ ollamaUp: true, ollamaModels: [] });
    expect((await auto.forGeneration()).backend).toBe('embedded');
    clock.now = RECHECK_MS;
    // A look starts while the model is still missing; the pull ends and the set-up service says so before that look is in.
    const slow = ollama.hold();
    const stale = auto.forGeneration();
    ollama.models = [`${MODEL}:latest`];
    auto.forget();
    expect((await auto.forGeneration()).backend).toBe('ollama');
    slow.release();
    expect((await stale).backend).toBe('embedded');
    expect(ollama.probes).toBe(3);
    // The fresh look is the one kept: reused within the interval, with no further probe.
    expect(auto.current).toBe('ollama');
    expect((await auto.forGeneration()).backend).toBe('ollama');
    expect(ollama.probes).toBe(3);
    expect(choices().map((line) => line.reason)).toEqual(['ollama-lacks-model', 'ollama-has-model']);
  });

  it('says why when Ollama starts without the model while the embedded model is in use, and when Ollama loses the model', async () => {
    const { auto, ollama, clock, choices } = chooser({ ollamaModels: [] });
    expect((await auto.forGeneration()).backend).toBe('embedded');
    ollama.up = true;
    clock.now = RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('embedded');
    ollama.models = [`${MODEL}:latest`];
    clock.now = 2 * RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('ollama');
    ollama.models = [];
    clock.now = 3 * RECHECK_MS;
    expect((await auto.forGeneration()).backend).toBe('embedded');
    expect(choices().map((line) => [line.level, line.chosen, line.reason, line.msg])).toEqual([
      [30, 'embedded', 'ollama-down', expect.stringContaining('no Ollama answers')],
      [
        30,
        'embedded',
        'ollama-lacks-model',
        `text backend: auto, now embedded (Ollama at ${URL} has no model ${MODEL}; \`ollama pull ${MODEL}\` to use it): the embedded model ${GGUF} is used`,
      ],
      [30, 'ollama', 'ollama-has-model', expect.stringContaining('now ollama')],
      [
        40,
        'embedded',
        'ollama-lacks-model',
        `text backend: auto, now embedded (Ollama at ${URL} has no model ${MODEL}; \`ollama pull ${MODEL}\` to use it): new generations use the embedded model ${GGUF}; running ones finish on Ollama`,
      ],
    ]);
  });
});

describe("Ollama's model list (GET /api/tags)", () => {
  it('reads both name fields as Ollama versions write them, once each; none as an empty list; anything else as no list', () => {
    expect(
      modelNamesIn({
        models: [
          { name: 'llama3.2:latest', model: 'llama3.2:latest', size: 2019393189 },
          { name: 'qwen2.5:1.5b-instruct' },
          { model: 'hf.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF:Q4_K_M' },
        ],
      }),
    ).toEqual(['llama3.2:latest', 'qwen2.5:1.5b-instruct', 'hf.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF:Q4_K_M']);
    expect(modelNamesIn({ models: [] })).toEqual([]);
    expect(modelNamesIn({ models: null })).toEqual([]);
    expect(modelNamesIn({ status: 'ok' })).toBeNull();
    expect(modelNamesIn({ models: 'llama3.2' })).toBeNull();
    expect(modelNamesIn('<html>')).toBeNull();
    expect(modelNamesIn(null)).toBeNull();
  });
});
