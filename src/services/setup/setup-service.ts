import type { Logger } from '../../logger.js';
import { DownloadError, type HubDownloads, type OllamaModels, type TransferOptions } from '../../ports/model-downloads.js';
import { type DownloadOutcome, type ModelDownloadWaits, SetupComponent, type SetupProbes } from '../../ports/setup.js';
import type { SharedDownloads } from '../../ports/shared-downloads.js';
import { InvalidInputError } from '../errors.js';
import { AutoChoiceReason, chooseAutoBackend, hasOllamaModel } from '../text/auto-text-choice.js';
import { type CatalogModel, catalogEntryFor, defaultModel, type ModelLicense, ModelRole } from './model-catalog.js';
import { TransferRate } from './transfer-rate.js';

/** Where a component stands. */
export enum ComponentState {
  READY = 'READY',
  /** Not there; `action` fixes it. */
  MISSING = 'MISSING',
  /** A missing component being downloaded; a READY one being downloaded (the optional Ollama pull) stays READY. */
  DOWNLOADING = 'DOWNLOADING',
  /** A server it needs does not answer; the message says what to start. */
  UNREACHABLE = 'UNREACHABLE',
  /** Switched off by configuration. */
  OFF = 'OFF',
}

export enum SetupActionKind {
  /** `POST /api/pull` on the Ollama that answers. */
  OLLAMA_PULL = 'OLLAMA_PULL',
  /** The embedded text backend's GGUF from the Hugging Face Hub into DATA_DIR/models/text. */
  EMBEDDED_MODEL_DOWNLOAD = 'EMBEDDED_MODEL_DOWNLOAD',
  /** A Stable Diffusion ONNX export from the Hugging Face Hub into SD_MODEL_DIR. */
  PICTURE_MODEL_DOWNLOAD = 'PICTURE_MODEL_DOWNLOAD',
}

export enum DownloadState {
  /** No download of this component has run (in any process sharing REDIS_URL, within the last day). */
  IDLE = 'IDLE',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}

/** The one action that fixes a missing component (or the optional Ollama pull offered on a READY embedded story model), with what it costs and on what terms, known before it starts. */
export interface SetupAction {
  kind: SetupActionKind;
  /** "Qwen2.5 1.5B Instruct (GGUF, Q4_K_M)". */
  title: string;
  /** Hugging Face repository (with the file, for one file) or Ollama model name. */
  source: string;
  /** Bytes to download as the catalog lists them; null for a model outside the catalog (Ollama says as it pulls). */
  sizeBytes: number | null;
  /** Null for a model outside the catalog: its card or library page says. */
  license: ModelLicense | null;
  /** Where it goes (a folder or file); null for Ollama, which keeps its own store. */
  destination: string | null;
}

export interface DownloadProgress {
  component: SetupComponent;
  state: DownloadState;
  bytesDone: number;
  bytesTotal: number | null;
  /** Over the last few seconds; null until measurable. */
  bytesPerSecond: number | null;
  secondsLeft: number | null;
  /** FAILED: what went wrong, in words a user can act on. */
  errorMessage: string | null;
}

export interface ComponentStatus {
  component: SetupComponent;
  state: ComponentState;
  /** What serves it: ollama, embedded, openai; onnx, automatic1111, none; postgresql, pglite. */
  backend: string;
  /** A sentence for people. */
  message: string;
  /**
   * What fixes a MISSING component. Also on a READY story model with TEXT_BACKEND unset that runs
   * on the embedded model because Ollama lacks OLLAMA_MODEL: the pull that moves it to Ollama.
   */
  action: SetupAction | null;
  /** The running (or last) download of this component, in this process or another sharing REDIS_URL. */
  download: DownloadProgress | null;
}

/** What one process tells the others of a download it runs (SharedDownloads' record). */
export interface SharedDownload {
  progress: DownloadProgress;
  action: SetupAction;
  /** How many times in a row a process took the download over from one that died, with no bytes fetched since; absent (0) in records of older versions. */
  takeovers?: number;
}

export interface SetupReport {
  /** Every component READY or OFF. */
  ready: boolean;
  components: ComponentStatus[];
}

export interface SetupSettings {
  text:
    | { backend: 'openai'; baseUrl: string; model: string }
    /** `auto`: TEXT_BACKEND unset, chosen by chooseAutoBackend as each generation is. */
    | { backend: 'ollama' | 'embedded' | 'auto'; ollamaBaseUrl: string; ollamaModel: string; embeddedModelFile: string };
  images: {
    backend: 'onnx' | 'automatic1111' | 'none';
    /** The backend was chosen because nothing else was found (IMAGE_BACKEND unset): a downloaded model turns pictures on. */
    chosenByDefault: boolean;
    sdModelDir: string;
    automatic1111Url: string | undefined;
  };
  database: { kind: 'postgres' | 'embedded' };
  /** This process can run every download (it has DATA_DIR/models and SD_MODEL_DIR to write): it continues one whose process died. */
  takesOverDownloads: boolean;
}

export interface SetupHooks {
  /** A download finished and its model is in place (the composition root switches pictures on, say). */
  installed?(component: SetupComponent): void;
}

const PROBE_TIMEOUT_MS = 3000;
/** A download's claim (and its RUNNING record) lapses this long after the process running it last said anything; it says so at least every third of it. */
const CLAIM_TTL_MS = 30_000;
/** A download taken over this many times in a row without a byte fetched ends FAILED at the next lapse: the processes running it keep dying. */
const MAX_TAKEOVERS = 3;
/** How long a finished download's last record stays to be seen. */
const KEEP_ENDED_MS = 24 * 60 * 60 * 1000;
/** Progress events at most this often while bytes flow; state changes go out at once. */
const PUBLISH_EVERY_MS = 200;
const LABEL: Record<SetupComponent, string> = {
  [SetupComponent.STORY_MODEL]: 'story model',
  [SetupComponent.PICTURE_MODEL]: 'picture model',
  [SetupComponent.DATABASE]: 'database',
};

/** One download: its progress, whoever follows it, and its end. */
class RunningDownload {
  state = DownloadState.RUNNING;
  bytesDone = 0;
  bytesTotal: number | null;
  errorMessage: string | null = null;
  readonly rate = new TransferRate();
  readonly listeners = new Set<(progress: DownloadProgress) => void>();
  lastPublished = Number.NEGATIVE_INFINITY;
  /** A publish held back by the rate limit, sent when the interval is over (so the last bytes before a pause are not lost). */
  trailing: ReturnType<typeof setTimeout> | null = null;
  ended!: Promise<DownloadOutcome>;
  /** Takeovers in a row with no byte fetched since (SharedDownload.takeovers); back to 0 once bytes go past `resumedAt`. */
  takeovers = 0;
  /** Bytes the download had when this process took it over. */
  resumedAt = 0;

  constructor(
    readonly component: SetupComponent,
    readonly action: SetupAction,
  ) {
    this.bytesTotal = action.sizeBytes;
  }

  progress(): DownloadProgress {
    const running = this.state === DownloadState.RUNNING;
    return {
      component: this.component,
      state: this.state,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      bytesPerSecond: running ? this.rate.bytesPerSecond() : null,
      secondsLeft: running ? this.rate.secondsLeft(this.bytesDone, this.bytesTotal) : this.state === DownloadState.COMPLETED ? 0 : null,
      errorMessage: this.errorMessage,
    };
  }
}

/** A component's status while a download of it runs: READY stays READY (the download is optional), anything else is DOWNLOADING. */
function during(found: Omit<ComponentStatus, 'download'>, action: SetupAction, progress: DownloadProgress): ComponentStatus {
  if (found.state === ComponentState.READY) {
    return { ...found, action, download: progress, message: `${found.message}. Downloading ${action.title}` };
  }
  return { ...found, state: ComponentState.DOWNLOADING, action, download: progress, message: `Downloading the ${LABEL[found.component]}: ${action.title}` };
}

/**
 * What is ready and what is not (story model, picture model, database), the one
 * action that fixes each missing piece, and running those actions: one download
 * per component at a time (a second request joins the first), followed by any
 * number of subscribers, awaited by generations that need the model.
 */
export class SetupService implements ModelDownloadWaits {
  private readonly downloads = new Map<SetupComponent, RunningDownload>();
  private readonly starting = new Map<SetupComponent, Promise<DownloadProgress>>();
  /** Aborted by close(): running downloads stop, keeping what they fetched for the next try. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly settings: SetupSettings,
    private readonly ports: { probes: SetupProbes; hub: HubDownloads; ollama: OllamaModels; shared: SharedDownloads<SharedDownload> },
    private readonly logger: Logger,
    private readonly hooks: SetupHooks = {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  async report(): Promise<SetupReport> {
    const components = await Promise.all(Object.values(SetupComponent).map((component) => this.status(component)));
    return { ready: components.every((c) => c.state === ComponentState.READY || c.state === ComponentState.OFF), components };
  }

  /**
   * One component's status. While a download of it runs (here or in another process), `download`
   * is its progress and `action` what it fetches; a MISSING component is then DOWNLOADING, while a
   * READY one stays READY (the optional Ollama pull while the embedded model serves stories).
   */
  async status(component: SetupComponent): Promise<ComponentStatus> {
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const found = await this.inspect(component, signal);
    const download = this.downloads.get(component);
    if (download?.state === DownloadState.RUNNING) return during(found, download.action, download.progress());
    const elsewhere = await this.ports.shared.latest(component);
    if (elsewhere?.progress.state === DownloadState.RUNNING) return during(found, elsewhere.action, elsewhere.progress);
    return { ...found, download: download?.progress() ?? elsewhere?.progress ?? null };
  }

  /**
   * Starts the action that fixes a missing component, or joins the download of it
   * already running (in this process, or in another that shares REDIS_URL). Throws InvalidInputError when nothing can be downloaded for it
   * (it is ready, off, or needs a server started).
   */
  startDownload(component: SetupComponent): Promise<DownloadProgress> {
    const running = this.downloads.get(component);
    if (running?.state === DownloadState.RUNNING) return Promise.resolve(running.progress());
    // Two requests racing while the first still inspects share its answer.
    let starting = this.starting.get(component);
    if (!starting) {
      starting = this.begin(component).finally(() => this.starting.delete(component));
      this.starting.set(component, starting);
    }
    return starting;
  }

  /**
   * The component's download as it goes: its current state first (IDLE when none has run),
   * then every change, ending after COMPLETED or FAILED.
   */
  follow(component: SetupComponent): AsyncIterable<DownloadProgress> {
    const download = this.downloads.get(component);
    if (download?.state !== DownloadState.RUNNING) return { [Symbol.asyncIterator]: () => this.followShared(component) };
    return {
      [Symbol.asyncIterator]: () => {
        const feed = new ProgressFeed(() => download.listeners.delete(feed.push));
        feed.push(download.progress());
        download.listeners.add(feed.push);
        return feed.iterator();
      },
    };
  }

  /** Stops every running download (the process is stopping) and waits for them to end. */
  async close(): Promise<void> {
    this.stopping.abort(new Error('The server is stopping'));
    await Promise.all([...this.downloads.values()].map((download) => download.ended));
  }

  async isDownloading(component: SetupComponent): Promise<boolean> {
    if (this.downloads.get(component)?.state === DownloadState.RUNNING) return true;
    return (await this.latestElsewhere(component))?.progress.state === DownloadState.RUNNING;
  }

  async whenDownloaded(component: SetupComponent, signal: AbortSignal): Promise<DownloadOutcome | null> {
    const download = this.downloads.get(component);
    if (download?.state !== DownloadState.RUNNING) return this.whenDownloadedElsewhere(component, signal);
    signal.throwIfAborted();
    return new Promise<DownloadOutcome>((resolve, reject) => {
      const stop = () => reject(signal.reason);
      signal.addEventListener('abort', stop, { once: true });
      download.ended.then((outcome) => {
        signal.removeEventListener('abort', stop);
        resolve(outcome);
      });
    });
  }

  /** The latest shared record; null when there is none or it cannot be read (logged). */
  private async latestElsewhere(component: SetupComponent): Promise<SharedDownload | null> {
    return this.ports.shared.latest(component).catch((error: unknown) => {
      this.logger.warn({ err: error, component }, 'could not read the shared download state');
      return null;
    });
  }

  /** whenDownloaded() of a download running in another process: followed through the shared records until it ends. */
  private async whenDownloadedElsewhere(component: SetupComponent, signal: AbortSignal): Promise<DownloadOutcome | null> {
    if ((await this.latestElsewhere(component))?.progress.state !== DownloadState.RUNNING) return null;
    const updates = this.followShared(component);
    const stop = () => void updates.return?.();
    signal.addEventListener('abort', stop, { once: true });
    try {
      for (let next = await updates.next(); !next.done; next = await updates.next()) {
        const progress = next.value;
        if (progress.state === DownloadState.COMPLETED) return { ok: true };
        if (progress.state === DownloadState.FAILED) return { ok: false, message: progress.errorMessage ?? `The ${LABEL[component]} download failed` };
        if (progress.state === DownloadState.IDLE) return null;
      }
      signal.throwIfAborted();
      return null;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  private async begin(component: SetupComponent): Promise<DownloadProgress> {
    const status = await this.status(component);
    const running = this.downloads.get(component);
    if (running?.state === DownloadState.RUNNING) return running.progress();
    // Running in another process: this request joins it.
    if (status.download?.state === DownloadState.RUNNING) return status.download;
    if (!status.action) throw new InvalidInputError(`There is nothing to download for the ${LABEL[component]}: ${status.message}`);
    if (!(await this.ports.shared.claim(component, CLAIM_TTL_MS))) {
      // Another process claimed it since the look above.
      const elsewhere = await this.ports.shared.latest(component);
      return elsewhere?.progress ?? { ...idle(component), state: DownloadState.RUNNING, bytesTotal: status.action.sizeBytes };
    }
    const download = new RunningDownload(component, status.action);
    this.downloads.set(component, download);
    download.rate.add(this.now(), 0);
    await this.share(download);
    download.ended = this.run(download);
    this.logger.info({ component, source: status.action.source, bytes: status.action.sizeBytes, license: status.action.license?.id }, 'model download started');
    return download.progress();
  }

  private async run(download: RunningDownload): Promise<DownloadOutcome> {
    // The claim is renewed while bytes flow (publish) and, with none flowing, by this.
    const keepClaim = setInterval(() => void this.share(download), CLAIM_TTL_MS / 3);
    try {
      return await this.transferAndReport(download);
    } finally {
      clearInterval(keepClaim);
      await this.ports.shared.release(download.component).catch((error: unknown) => {
        this.logger.warn({ err: error, component: download.component }, 'could not release the download claim; it lapses by itself');
      });
    }
  }

  private async transferAndReport(download: RunningDownload): Promise<DownloadOutcome> {
    const { action } = download;
    const options = {
      signal: this.stopping.signal,
      onProgress: (done: number, total: number | null) => {
        download.bytesDone = done;
        if (done > download.resumedAt) download.takeovers = 0;
        if (total !== null) download.bytesTotal = total;
        const at = this.now();
        download.rate.add(at, done);
        const wait = download.lastPublished + PUBLISH_EVERY_MS - at;
        if (wait <= 0) this.publish(download, at);
        else download.trailing ??= setTimeout(() => this.publish(download, this.now()), wait);
      },
      onRetry: (reason: string) => this.logger.warn({ component: download.component, reason }, 'model download interrupted; resuming it'),
    };
    try {
      await this.transfer(action, options);
      download.state = DownloadState.COMPLETED;
      if (download.bytesTotal !== null) download.bytesDone = download.bytesTotal;
      this.logger.info({ component: download.component, source: action.source }, 'model download completed');
      this.hooks.installed?.(download.component);
      this.publish(download, this.now());
      return { ok: true };
    } catch (error) {
      const message = this.stopping.signal.aborted
        ? 'the server stopped; what was downloaded is kept and the next try resumes from there'
        : error instanceof DownloadError
          ? error.message
          : `unexpected error: ${(error as Error).message}`;
      if (error instanceof DownloadError || this.stopping.signal.aborted)
        this.logger.warn({ component: download.component, reason: message }, 'model download failed');
      else this.logger.error({ err: error, component: download.component }, 'model download failed');
      download.state = DownloadState.FAILED;
      download.errorMessage = `The ${LABEL[download.component]} download failed: ${message}`;
      this.publish(download, this.now());
      return { ok: false, message: download.errorMessage };
    }
  }

  private transfer(action: SetupAction, options: TransferOptions): Promise<void> {
    const model = this.catalogModelOf(action);
    switch (action.kind) {
      case SetupActionKind.OLLAMA_PULL:
        return this.ports.ollama.pull(action.source, options);
      case SetupActionKind.EMBEDDED_MODEL_DOWNLOAD:
        if (model?.source.kind !== 'huggingface-file' || !action.destination) throw new Error('the embedded model has no Hugging Face file to fetch');
        return this.ports.hub.pullFile(model.source, action.destination, options);
      case SetupActionKind.PICTURE_MODEL_DOWNLOAD:
        if (model?.source.kind !== 'huggingface-repo' || !action.destination) throw new Error('the picture model has no Hugging Face repository to fetch');
        return this.ports.hub.pullPictureModel(model.source, action.destination, options);
    }
  }

  private catalogModelOf(action: SetupAction): CatalogModel | undefined {
    if (action.kind === SetupActionKind.EMBEDDED_MODEL_DOWNLOAD) return defaultModel(ModelRole.EMBEDDED_TEXT);
    if (action.kind === SetupActionKind.PICTURE_MODEL_DOWNLOAD) return defaultModel(ModelRole.PICTURES);
    return catalogEntryFor(action.source);
  }

  private publish(download: RunningDownload, at: number): void {
    if (download.trailing) clearTimeout(download.trailing);
    download.trailing = null;
    download.lastPublished = at;
    const progress = download.progress();
    for (const listener of download.listeners) listener(progress);
    if (download.state !== DownloadState.RUNNING) download.listeners.clear();
    void this.share(download);
  }

  /** Tells the other processes how the download stands (and renews its claim); a failure is logged, the download goes on. */
  private async share(download: RunningDownload): Promise<void> {
    const keepMs = download.state === DownloadState.RUNNING ? CLAIM_TTL_MS : KEEP_ENDED_MS;
    await this.ports.shared
      .publish(download.component, { progress: download.progress(), action: download.action, takeovers: download.takeovers }, { keepMs, claimMs: CLAIM_TTL_MS })
      .catch((error: unknown) => this.logger.warn({ err: error, component: download.component }, 'could not share the download progress'));
  }

  /**
   * follow() of a component with no download running here: the latest record any process
   * shared (or IDLE), then every record shared, ending after COMPLETED or FAILED. A download
   * whose record lapses (its process died) is taken over by this process when it can run it
   * (takesOverDownloads) and wins the claim, and followed on wherever it goes on; a process that
   * cannot run it waits one more round for another to take it over, then ends it FAILED.
   */
  private followShared(component: SetupComponent): AsyncIterator<DownloadProgress> {
    let unsubscribe: (() => void) | null = null;
    /** The last RUNNING record seen: what a takeover continues. */
    let lastRunning: SharedDownload | null = null;
    let lapsedBefore = false;
    const seen = (record: SharedDownload | null) => {
      if (record?.progress.state === DownloadState.RUNNING) lastRunning = record;
    };
    const feed = new ProgressFeed(() => {
      clearInterval(watch);
      unsubscribe?.();
    });
    const watch = setInterval(async () => {
      const latest = await this.ports.shared.latest(component).catch(() => undefined);
      if (latest === undefined) return;
      seen(latest);
      if (latest?.progress.state === DownloadState.RUNNING) {
        lapsedBefore = false;
        return;
      }
      if (latest) return feed.push(latest.progress);
      // No record: the process running it died. A takeover's records come through the subscription.
      if (lastRunning && this.settings.takesOverDownloads) return void this.takeOver(lastRunning);
      if (lastRunning && !lapsedBefore) {
        lapsedBefore = true;
        return;
      }
      feed.push({
        ...idle(component),
        state: DownloadState.FAILED,
        errorMessage: `The ${LABEL[component]} download stopped: the server process running it is gone; start it again`,
      });
    }, CLAIM_TTL_MS);
    watch.unref();
    const started = (async () => {
      const listening = await this.ports.shared.subscribe(component, (record) => {
        seen(record);
        feed.push(record.progress);
      });
      if (feed.stopped) return listening();
      unsubscribe = listening;
      const latest = await this.ports.shared.latest(component);
      seen(latest);
      // Records that came while asking are as new as this one or newer.
      feed.pushFirst(latest?.progress ?? this.downloads.get(component)?.progress() ?? idle(component));
    })();
    return feed.iterator(started);
  }

  /**
   * Continues the download `lapsed` described, whose process died, if this process wins its
   * claim: from the bytes already on disk (transfers resume their partial files), publishing as
   * usual. Past MAX_TAKEOVERS in a row without progress it publishes FAILED instead.
   */
  private async takeOver(lapsed: SharedDownload): Promise<void> {
    const { component } = lapsed.progress;
    if (this.downloads.get(component)?.state === DownloadState.RUNNING || this.starting.has(component)) return;
    const attempt = (async () => {
      const won = await this.ports.shared.claim(component, CLAIM_TTL_MS).catch((error: unknown) => {
        this.logger.warn({ err: error, component }, 'could not claim a download whose process died');
        return false;
      });
      if (!won) return idle(component);
      const download = new RunningDownload(component, lapsed.action);
      download.bytesDone = download.resumedAt = lapsed.progress.bytesDone;
      download.bytesTotal = lapsed.progress.bytesTotal ?? lapsed.action.sizeBytes;
      download.takeovers = (lapsed.takeovers ?? 0) + 1;
      this.downloads.set(component, download);
      if (download.takeovers > MAX_TAKEOVERS) {
        download.state = DownloadState.FAILED;
        download.errorMessage = `The ${LABEL[component]} download failed: the server processes running it kept dying (${MAX_TAKEOVERS} times in a row without getting further; out of memory, or restarted?); what was downloaded is kept, start it again once they stay up`;
        download.ended = Promise.resolve({ ok: false, message: download.errorMessage });
        this.logger.warn({ component, source: lapsed.action.source, takeovers: MAX_TAKEOVERS }, 'model download given up: the processes running it kept dying');
        this.publish(download, this.now());
        await this.ports.shared.release(component).catch(() => undefined);
        return download.progress();
      }
      // The transfer counts from 0 again, adding the bytes it finds on disk, as a fresh start does.
      download.rate.add(this.now(), 0);
      await this.share(download);
      download.ended = this.run(download);
      this.logger.warn(
        { component, source: lapsed.action.source, bytesDone: download.bytesDone, takeover: download.takeovers },
        'model download taken over from a process that died; resuming it here',
      );
      return download.progress();
    })();
    this.starting.set(component, attempt);
    await attempt.finally(() => this.starting.delete(component));
  }

  // --- what is there ----------------------------------------------------------------------

  private inspect(component: SetupComponent, signal: AbortSignal): Promise<Omit<ComponentStatus, 'download'>> {
    switch (component) {
      case SetupComponent.STORY_MODEL:
        return this.inspectStoryModel(signal);
      case SetupComponent.PICTURE_MODEL:
        return this.inspectPictureModel(signal);
      case SetupComponent.DATABASE:
        return this.inspectDatabase(signal);
    }
  }

  private async inspectStoryModel(signal: AbortSignal): Promise<Omit<ComponentStatus, 'download'>> {
    const component = SetupComponent.STORY_MODEL;
    const text = this.settings.text;
    if (text.backend === 'openai') {
      const problem = await failureOf(() => this.ports.probes.checkTextServer(signal));
      return problem
        ? { component, state: ComponentState.UNREACHABLE, backend: 'openai', message: problem, action: null }
        : { component, state: ComponentState.READY, backend: 'openai', message: `${text.model} at ${text.baseUrl} answers`, action: null };
    }
    /** `ollamaDown`: why the embedded model is the story model (TEXT_BACKEND unset and no Ollama answers). */
    const embedded = async (ollamaDown: string | null): Promise<Omit<ComponentStatus, 'download'>> => {
      const file = text.embeddedModelFile;
      if (await this.ports.probes.hasFile(file)) {
        const message = ollamaDown ? `${ollamaDown}: the embedded model ${file} is used` : `The embedded model ${file} is in place`;
        return { component, state: ComponentState.READY, backend: 'embedded', message, action: null };
      }
      const model = defaultModel(ModelRole.EMBEDDED_TEXT);
      return {
        component,
        state: ComponentState.MISSING,
        backend: 'embedded',
        message: ollamaDown
          ? `${ollamaDown}: download the embedded story model (${model.title}), or start Ollama and reload`
          : `The embedded story model is not at ${file}: download it (${model.title})`,
        action: actionFor(SetupActionKind.EMBEDDED_MODEL_DOWNLOAD, model, file),
      };
    };
    if (text.backend === 'embedded') return embedded(null);
    const installed = await this.ports.ollama.installedModels(signal);
    const unreachable = `Ollama is not reachable at ${text.ollamaBaseUrl}`;
    const lacking = `Ollama at ${text.ollamaBaseUrl} does not have the model "${text.ollamaModel}"`;
    const known = catalogEntryFor(text.ollamaModel);
    const pull: SetupAction = {
      kind: SetupActionKind.OLLAMA_PULL,
      title: known?.title ?? `${text.ollamaModel} (Ollama)`,
      source: text.ollamaModel,
      sizeBytes: known?.sizeBytes ?? null,
      license: known?.license ?? null,
      destination: null,
    };
    if (text.backend === 'auto') {
      // The rule generations follow (AutoTextBackend), so the panel shows the backend the next generation gets.
      const embeddedModelPresent = await this.ports.probes.hasFile(text.embeddedModelFile);
      const { reason } = chooseAutoBackend({ ollamaModels: installed, embeddedModelPresent }, text.ollamaModel);
      if (reason === AutoChoiceReason.OLLAMA_DOWN) return embedded(unreachable);
      if (reason === AutoChoiceReason.OLLAMA_LACKS_MODEL) {
        // Ready on the embedded model; the pull stays on offer, and once done the next generation uses Ollama.
        const message = `${lacking}: the embedded model ${text.embeddedModelFile} is used; pull it into Ollama (here, or \`ollama pull ${text.ollamaModel}\`) to use Ollama`;
        return { component, state: ComponentState.READY, backend: 'embedded', message, action: pull };
      }
    }
    if (installed === null) {
      return { component, state: ComponentState.UNREACHABLE, backend: 'ollama', message: `${unreachable}: start it with \`ollama serve\``, action: null };
    }
    if (hasOllamaModel(installed, text.ollamaModel)) {
      return { component, state: ComponentState.READY, backend: 'ollama', message: `Ollama at ${text.ollamaBaseUrl} has ${text.ollamaModel}`, action: null };
    }
    return { component, state: ComponentState.MISSING, backend: 'ollama', message: `${lacking}; pull it`, action: pull };
  }

  private async inspectPictureModel(signal: AbortSignal): Promise<Omit<ComponentStatus, 'download'>> {
    const component = SetupComponent.PICTURE_MODEL;
    const { backend, chosenByDefault, sdModelDir, automatic1111Url } = this.settings.images;
    if (backend === 'automatic1111' && automatic1111Url) {
      const problem = await failureOf(() => this.ports.probes.checkAutomatic1111(automatic1111Url, signal));
      return problem
        ? { component, state: ComponentState.UNREACHABLE, backend, message: `AUTOMATIC1111 at ${automatic1111Url} does not answer: ${problem}`, action: null }
        : { component, state: ComponentState.READY, backend, message: `AUTOMATIC1111 at ${automatic1111Url} answers`, action: null };
    }
    if (backend === 'none' && !chosenByDefault) {
      return { component, state: ComponentState.OFF, backend, message: 'Pictures are off (IMAGE_BACKEND=none): stories are text-only', action: null };
    }
    const problem = await failureOf(() => this.ports.probes.checkPictureModel(sdModelDir));
    if (!problem) return { component, state: ComponentState.READY, backend: 'onnx', message: `A Stable Diffusion model is in ${sdModelDir}`, action: null };
    const model = defaultModel(ModelRole.PICTURES);
    return {
      component,
      state: ComponentState.MISSING,
      backend: 'onnx',
      message: `No usable picture model in ${sdModelDir} (${problem}): download ${model.title} to paint the stories`,
      action: actionFor(SetupActionKind.PICTURE_MODEL_DOWNLOAD, model, sdModelDir),
    };
  }

  private async inspectDatabase(signal: AbortSignal): Promise<Omit<ComponentStatus, 'download'>> {
    const component = SetupComponent.DATABASE;
    const backend = this.settings.database.kind === 'postgres' ? 'postgresql' : 'pglite';
    const problem = await failureOf(() => this.ports.probes.checkDatabase(signal));
    return problem
      ? { component, state: ComponentState.UNREACHABLE, backend, message: `The database does not answer: ${problem}`, action: null }
      : {
          component,
          state: ComponentState.READY,
          backend,
          message: backend === 'postgresql' ? 'PostgreSQL answers' : 'The embedded database (PGlite) is open',
          action: null,
        };
  }
}

function idle(component: SetupComponent): DownloadProgress {
  return { component, state: DownloadState.IDLE, bytesDone: 0, bytesTotal: null, bytesPerSecond: null, secondsLeft: null, errorMessage: null };
}

function actionFor(kind: SetupActionKind, model: CatalogModel, destination: string): SetupAction {
  const source =
    model.source.kind === 'huggingface-file'
      ? `${model.source.repo}/${model.source.file}`
      : model.source.kind === 'huggingface-repo'
        ? model.source.repo
        : model.source.model;
  return { kind, title: model.title, source, sizeBytes: model.sizeBytes, license: model.license, destination };
}

async function failureOf(check: () => Promise<void>): Promise<string | null> {
  try {
    await check();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Download progress pushed by a listener, read as one async iterator that ends after the
 * first state other than RUNNING (anything pushed after it is dropped). `release` lets go
 * of the listener's source, once, when the iterator ends or its reader stops.
 */
class ProgressFeed {
  private readonly queue: DownloadProgress[] = [];
  private wake: (() => void) | null = null;
  private finished = false;

  constructor(private readonly release: () => void) {}

  get stopped(): boolean {
    return this.finished;
  }

  readonly push = (progress: DownloadProgress): void => {
    this.queue.push(progress);
    this.wake?.();
  };

  /** Before what was pushed meanwhile, which is as new or newer. */
  pushFirst(progress: DownloadProgress): void {
    this.queue.unshift(progress);
    this.wake?.();
  }

  /** Reads after `ready` (the source's subscription) has settled. */
  iterator(ready: Promise<void> = Promise.resolve()): AsyncIterator<DownloadProgress> {
    return {
      next: async (): Promise<IteratorResult<DownloadProgress>> => {
        await ready;
        while (!this.finished || this.queue.length > 0) {
          const next = this.queue.shift();
          if (next) {
            if (next.state !== DownloadState.RUNNING) {
              this.stop();
              this.queue.length = 0;
            }
            return { value: next, done: false };
          }
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
          this.wake = null;
        }
        return { value: undefined, done: true };
      },
      return: async (): Promise<IteratorResult<DownloadProgress>> => {
        this.stop();
        this.queue.length = 0;
        this.wake?.();
        return { value: undefined, done: true };
      },
    };
  }

  private stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
  }
}
