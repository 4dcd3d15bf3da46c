import type { Logger } from '../../logger.js';
import type { TextGenerator, TextGeneratorLease, TextGenerators } from '../../ports/text-generator.js';
import type { OllamaProbeResult } from './ollama-probe.js';

/** What TEXT_BACKEND unset chooses between, by their TEXT_BACKEND names. */
export type AutoChoice = 'ollama' | 'embedded';

export interface AutoTextBackendParts {
  ollama: TextGenerator;
  embedded: TextGenerator;
  /** Whether Ollama answers now (probeOllama); never throws. */
  probeOllama(): Promise<OllamaProbeResult>;
  /** Frees the embedded model once its running turn is over; its next use loads it again. */
  releaseEmbedded(): Promise<void>;
}

export interface AutoTextBackendSettings {
  /** OLLAMA_BASE_URL, for the log lines. */
  ollamaBaseUrl: string;
  /** OLLAMA_RECHECK_MS: one look at Ollama is reused for this long (ms), so a burst of generations probes once. */
  recheckMs: number;
}

/**
 * TEXT_BACKEND unset: Ollama while it answers at OLLAMA_BASE_URL, else the
 * embedded model, decided afresh as each generation starts (at most one probe
 * per `recheckMs`), so an Ollama started after the server, or back after a
 * restart, is used without restarting the server. A generation keeps the
 * backend it started with to its end (its lease). One log line each time the
 * choice changes.
 *
 * Memory: the embedded model loads only when a generation on it asks it for
 * text, so nothing is loaded while Ollama is chosen. Once Ollama is chosen and
 * the last generation on the embedded model has ended, the embedded model is
 * freed: Ollama holds a model of its own, and two in memory may not fit the
 * machines this default is for. Should Ollama go away again, the embedded
 * model loads again at its next generation (seconds).
 */
export class AutoTextBackend implements TextGenerators {
  private choice: AutoChoice | null = null;
  private lookedAt = Number.NEGATIVE_INFINITY;
  private looking: Promise<AutoChoice> | null = null;
  /** Generations holding the embedded model. */
  private embeddedLeases = 0;
  /** An embedded lease was handed out since the model was last freed. */
  private embeddedUsed = false;

  constructor(
    private readonly parts: AutoTextBackendParts,
    private readonly settings: AutoTextBackendSettings,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The backend the last look chose; null before the first look. */
  get current(): AutoChoice | null {
    return this.choice;
  }

  /** Ollama if it answers (a look less than `recheckMs` old is reused; callers meanwhile share one probe), else embedded. Never throws. */
  choose(): Promise<AutoChoice> {
    if (this.choice && this.now() - this.lookedAt < this.settings.recheckMs) return Promise.resolve(this.choice);
    this.looking ??= this.look().finally(() => {
      this.looking = null;
    });
    return this.looking;
  }

  /** The generator a generation starting now would get, without holding it (readiness checks, the set-up panel). */
  async generatorNow(): Promise<TextGenerator> {
    return this.parts[await this.choose()];
  }

  async forGeneration(): Promise<TextGeneratorLease> {
    const backend = await this.choose();
    if (backend === 'embedded') {
      this.embeddedLeases++;
      this.embeddedUsed = true;
    }
    let released = false;
    return {
      backend,
      text: this.parts[backend],
      release: () => {
        if (released) return;
        released = true;
        if (backend !== 'embedded') return;
        this.embeddedLeases--;
        this.freeEmbeddedIfUnused();
      },
    };
  }

  private async look(): Promise<AutoChoice> {
    const probe = await this.parts.probeOllama();
    this.lookedAt = this.now();
    const next = probe.answers ? 'ollama' : 'embedded';
    if (next !== this.choice) this.logChange(this.choice, next, probe.answers ? null : probe.reason);
    this.choice = next;
    this.freeEmbeddedIfUnused();
    return next;
  }

  private logChange(previous: AutoChoice | null, next: AutoChoice, whyNotOllama: string | null): void {
    const url = this.settings.ollamaBaseUrl;
    const fields = { textBackend: 'auto', chosen: next };
    const seconds = this.settings.recheckMs / 1000;
    if (previous === null) {
      this.logger.info(
        fields,
        next === 'ollama'
          ? `text backend: auto, now ollama (TEXT_BACKEND is unset and Ollama answers at ${url})`
          : `text backend: auto, now embedded (TEXT_BACKEND is unset and no Ollama answers at ${url}: ${whyNotOllama}); an Ollama started later is used from the next generation (looked for again after ${seconds} s), no restart needed; set TEXT_BACKEND to choose`,
      );
    } else if (next === 'ollama') {
      this.logger.info(
        fields,
        `text backend: auto, now ollama (Ollama answers at ${url} now): new generations use it; running ones finish on the embedded model`,
      );
    } else {
      this.logger.warn(
        fields,
        `text backend: auto, now embedded (Ollama stopped answering at ${url}: ${whyNotOllama}): new generations use the embedded model until Ollama answers again`,
      );
    }
  }

  private freeEmbeddedIfUnused(): void {
    if (this.choice !== 'ollama' || this.embeddedLeases > 0 || !this.embeddedUsed) return;
    this.embeddedUsed = false;
    this.parts.releaseEmbedded().then(
      () => this.logger.info({ textBackend: 'auto' }, 'embedded text model freed: Ollama is in use'),
      (error: unknown) => this.logger.warn({ err: error }, 'could not free the embedded text model'),
    );
  }
}
