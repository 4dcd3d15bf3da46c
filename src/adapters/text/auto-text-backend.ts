import type { Logger } from '../../logger.js';
import type { TextGenerator, TextGeneratorLease, TextGenerators } from '../../ports/text-generator.js';
import { type AutoChoice, AutoChoiceReason, type AutoDecision, chooseAutoBackend } from '../../services/text/auto-text-choice.js';
import type { OllamaProbeResult } from './ollama-probe.js';

export interface AutoTextBackendParts {
  ollama: TextGenerator;
  embedded: TextGenerator;
  /** Whether Ollama answers now, and with which models (probeOllama); never throws. */
  probeOllama(): Promise<OllamaProbeResult>;
  /** Whether the embedded model's GGUF (EMBEDDED_MODEL_FILE) is on disk now; never throws. */
  hasEmbeddedModel(): Promise<boolean>;
  /** Frees the embedded model once its running turn is over; its next use loads it again. */
  releaseEmbedded(): Promise<void>;
}

export interface AutoTextBackendSettings {
  /** OLLAMA_BASE_URL, for the log lines. */
  ollamaBaseUrl: string;
  /** OLLAMA_MODEL: the model Ollama must have to be chosen over an embedded model on disk. */
  ollamaModel: string;
  /** EMBEDDED_MODEL_FILE, for the log lines. */
  embeddedModelFile: string;
  /** OLLAMA_RECHECK_MS: one look (at Ollama and the disk) is reused for this long (ms), so a burst of generations probes once. */
  recheckMs: number;
}

type LogLevel = 'info' | 'warn';

/**
 * TEXT_BACKEND unset: decided afresh as each generation starts, from one look
 * at Ollama's models (`GET /api/tags` at OLLAMA_BASE_URL) and at
 * EMBEDDED_MODEL_FILE (chooseAutoBackend, the rule the set-up panel follows
 * too):
 *
 * | Ollama                        | embedded GGUF on disk | chosen   |
 * |-------------------------------|-----------------------|----------|
 * | answers, has OLLAMA_MODEL     | either                | ollama   |
 * | answers, lacks OLLAMA_MODEL   | yes                   | embedded |
 * | answers, lacks OLLAMA_MODEL   | no                    | ollama (the set-up panel offers the pull; generations wait for a running one) |
 * | does not answer               | either                | embedded (downloaded first if missing) |
 *
 * OLLAMA_MODEL without a tag means `:latest`; a tag must match exactly. One
 * look serves every generation for `recheckMs` (callers meanwhile share one
 * probe), so an Ollama started after the server, back after a restart, or
 * given the model by `ollama pull`, is used within that without restarting the
 * server; forget() makes the next generation look at once (the set-up panel's
 * pull has finished). A generation keeps the backend it started with to its
 * end (its lease). One log line each time the choice or its reason changes,
 * with the fields `chosen` and `reason` (AutoChoiceReason).
 *
 * Memory: the embedded model loads only when a generation on it asks it for
 * text, so nothing is loaded while Ollama is chosen. Once Ollama is chosen and
 * the last generation on the embedded model has ended, the embedded model is
 * freed: Ollama holds a model of its own, and two in memory may not fit the
 * machines this default is for. Should the choice go back to the embedded
 * model, it loads again at its next generation (seconds).
 */
export class AutoTextBackend implements TextGenerators {
  private decision: AutoDecision | null = null;
  private lookedAt = Number.NEGATIVE_INFINITY;
  private looking: Promise<AutoDecision> | null = null;
  /** Counts forget() calls: a look started before one is not kept. */
  private forgotten = 0;
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
    return this.decision?.backend ?? null;
  }

  /** The backend a generation starting now gets (a look less than `recheckMs` old is reused). Never throws. */
  async choose(): Promise<AutoChoice> {
    return (await this.decide()).backend;
  }

  /** The generator a generation starting now would get, without holding it (readiness checks, the set-up panel). */
  async generatorNow(): Promise<TextGenerator> {
    return this.parts[await this.choose()];
  }

  /** The next choice looks again, however recent the last look (Ollama has just pulled OLLAMA_MODEL, say). */
  forget(): void {
    this.forgotten++;
    this.lookedAt = Number.NEGATIVE_INFINITY;
    this.looking = null;
  }

  async forGeneration(): Promise<TextGeneratorLease> {
    const { backend, modelPresent } = await this.decide();
    if (backend === 'embedded') {
      this.embeddedLeases++;
      this.embeddedUsed = true;
    }
    let released = false;
    return {
      backend,
      text: this.parts[backend],
      modelPresent,
      release: () => {
        if (released) return;
        released = true;
        if (backend !== 'embedded') return;
        this.embeddedLeases--;
        this.freeEmbeddedIfUnused();
      },
    };
  }

  private decide(): Promise<AutoDecision> {
    if (this.decision && this.now() - this.lookedAt < this.settings.recheckMs) return Promise.resolve(this.decision);
    if (!this.looking) {
      const looking: Promise<AutoDecision> = this.look().finally(() => {
        if (this.looking === looking) this.looking = null;
      });
      this.looking = looking;
    }
    return this.looking;
  }

  private async look(): Promise<AutoDecision> {
    const forgotten = this.forgotten;
    const [probe, embeddedModelPresent] = await Promise.all([this.parts.probeOllama(), this.parts.hasEmbeddedModel()]);
    const next = chooseAutoBackend({ ollamaModels: probe.answers ? probe.models : null, embeddedModelPresent }, this.settings.ollamaModel);
    // forget() was called meanwhile: this look may predate what it was told of; the next one is kept instead.
    if (forgotten !== this.forgotten) return next;
    this.lookedAt = this.now();
    if (next.reason !== this.decision?.reason) this.logChange(this.decision, next, probe.answers ? null : probe.reason);
    this.decision = next;
    this.freeEmbeddedIfUnused();
    return next;
  }

  private logChange(previous: AutoDecision | null, next: AutoDecision, whyNotOllama: string | null): void {
    const { ollamaBaseUrl: url, ollamaModel: model, embeddedModelFile: file } = this.settings;
    const pull = `\`ollama pull ${model}\``;
    const fromEmbedded = previous?.backend === 'embedded';
    const fromOllama = previous?.backend === 'ollama';
    const [level, why, then]: [LogLevel, string, string] = (() => {
      switch (next.reason) {
        case AutoChoiceReason.OLLAMA_HAS_MODEL:
          return [
            'info',
            previous === null ? `Ollama answers at ${url} with ${model}` : `Ollama at ${url} has ${model} now`,
            fromEmbedded ? ': new generations use it; running ones finish on the embedded model' : '',
          ];
        case AutoChoiceReason.OLLAMA_LACKS_MODEL:
          return [
            fromOllama ? 'warn' : 'info',
            `Ollama at ${url} has no model ${model}; ${pull} to use it`,
            fromOllama ? `: new generations use the embedded model ${file}; running ones finish on Ollama` : `: the embedded model ${file} is used`,
          ];
        case AutoChoiceReason.OLLAMA_NEEDS_PULL:
          return [
            'warn',
            `Ollama at ${url} has no model ${model}, and no embedded model is at ${file}`,
            `: pull it from the set-up panel or with ${pull}; generations wait for a pull the panel runs, and fail without one`,
          ];
        case AutoChoiceReason.OLLAMA_DOWN:
          return previous === null
            ? [
                'info',
                `no Ollama answers at ${url}: ${whyNotOllama}`,
                `; an Ollama started later is used from the next generation (looked for again after ${this.settings.recheckMs / 1000} s), no restart needed; set TEXT_BACKEND to choose`,
              ]
            : ['warn', `Ollama stopped answering at ${url}: ${whyNotOllama}`, ': new generations use the embedded model until Ollama answers again'];
      }
    })();
    const unset = previous === null ? 'TEXT_BACKEND is unset and ' : '';
    this.logger[level](
      { textBackend: 'auto', chosen: next.backend, reason: next.reason, ollamaBaseUrl: url, ollamaModel: model },
      `text backend: auto, now ${next.backend} (${unset}${why})${then}`,
    );
  }

  private freeEmbeddedIfUnused(): void {
    if (this.decision?.backend !== 'ollama' || this.embeddedLeases > 0 || !this.embeddedUsed) return;
    this.embeddedUsed = false;
    this.parts.releaseEmbedded().then(
      () => this.logger.info({ textBackend: 'auto' }, 'embedded text model freed: Ollama is in use'),
      (error: unknown) => this.logger.warn({ err: error }, 'could not free the embedded text model'),
    );
  }
}
