import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AutoTextBackend } from '../../src/adapters/text/auto-text-backend.js';
import type { OllamaProbeResult } from '../../src/adapters/text/ollama-probe.js';
import type { TextGenerator } from '../../src/ports/text-generator.js';

const URL = 'http://127.0.0.1:11434';
const RECHECK_MS = 5000;

/** A text generator that only says which one it is: the chooser hands these out and never calls them. */
function generator(name: string): TextGenerator {
  const refuse = () => Promise.reject(new Error(`${name} is not called by the chooser`));
  return { planBook: refuse, writePage: refuse, describe: refuse, checkAvailable: refuse };
}

/** An Ollama that answers or not as the test says, counting the looks; a clock the test moves; the log lines as objects. */
function chooser(options: { ollamaUp?: boolean; recheckMs?: number } = {}) {
  const ollama = { up: options.ollamaUp ?? false, probes: 0 };
  const clock = { now: 0 };
  const freed: number[] = [];
  const lines: { level: number; msg: string; chosen?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const texts = { ollama: generator('ollama'), embedded: generator('embedded') };
  const auto = new AutoTextBackend(
    {
      ...texts,
      probeOllama: async (): Promise<OllamaProbeResult> => {
        ollama.probes++;
        return ollama.up ? { answers: true } : { answers: false, reason: 'ECONNREFUSED' };
      },
      releaseEmbedded: async () => void freed.push(clock.now),
    },
    { ollamaBaseUrl: URL, recheckMs: options.recheckMs ?? RECHECK_MS },
    logger,
    () => clock.now,
  );
  const choices = () => lines.filter((line) => line.msg.startsWith('text backend: auto'));
  return { auto, ollama, clock, freed, lines, choices, texts };
}

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
      [30, 'ollama', `text backend: auto, now ollama (Ollama answers at ${URL} now): new generations use it; running ones finish on the embedded model`],
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
      [30, 'ollama', `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${URL})`],
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
});
