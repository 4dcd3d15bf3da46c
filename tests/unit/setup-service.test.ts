import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import {
  DownloadError,
  type HubDownloads,
  type HubFileSource,
  type HubRepoSource,
  type OllamaModels,
  type TransferOptions,
} from '../../src/ports/model-downloads.js';
import { SetupComponent, type SetupProbes } from '../../src/ports/setup.js';
import { InProcessSharedDownloads } from '../../src/adapters/setup/in-process-shared-downloads.js';
import type { SharedDownloads } from '../../src/ports/shared-downloads.js';
import { InvalidInputError } from '../../src/services/errors.js';
import { defaultModel, MODEL_CATALOG, ModelRole } from '../../src/services/setup/model-catalog.js';
import {
  ComponentState,
  type DownloadProgress,
  DownloadState,
  SetupActionKind,
  SetupService,
  type SetupSettings,
  type SharedDownload,
} from '../../src/services/setup/setup-service.js';
import { TransferRate } from '../../src/services/setup/transfer-rate.js';

/** The set-up service against in-memory ports: files that exist or not, servers that answer or not, downloads driven by hand. */

class MemoryProbes implements SetupProbes {
  files = new Set<string>();
  pictureModels = new Set<string>();
  databaseDown: string | null = null;
  textServerDown: string | null = null;
  automatic1111Down: string | null = null;
  async checkDatabase(): Promise<void> {
    if (this.databaseDown) throw new Error(this.databaseDown);
  }
  async checkTextServer(): Promise<void> {
    if (this.textServerDown) throw new Error(this.textServerDown);
  }
  async checkAutomatic1111(): Promise<void> {
    if (this.automatic1111Down) throw new Error(this.automatic1111Down);
  }
  async hasFile(file: string): Promise<boolean> {
    return this.files.has(file);
  }
  async checkPictureModel(dir: string): Promise<void> {
    if (!this.pictureModels.has(dir)) throw new Error('nothing is there yet');
  }
}

/** A transfer the test drives: report bytes, then finish or fail it. */
interface Transfer {
  what: string;
  options: TransferOptions;
  finish(): void;
  fail(error: Error): void;
}

class ManualTransfers implements HubDownloads, OllamaModels {
  readonly started: Transfer[] = [];
  installed: string[] | null = [];

  private begin(what: string, options: TransferOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true });
      this.started.push({ what, options, finish: resolve, fail: reject });
    });
  }
  pullPictureModel(source: HubRepoSource, targetDir: string, options: TransferOptions): Promise<void> {
    return this.begin(`hub:${source.repo}→${targetDir}`, options);
  }
  pullFile(source: HubFileSource, targetPath: string, options: TransferOptions): Promise<void> {
    return this.begin(`hub:${source.repo}/${source.file}→${targetPath}`, options);
  }
  async installedModels(): Promise<string[] | null> {
    return this.installed;
  }
  pull(model: string, options: TransferOptions): Promise<void> {
    return this.begin(`ollama:${model}`, options);
  }
}

const SETTINGS: SetupSettings = {
  text: { backend: 'auto', ollamaBaseUrl: 'http://127.0.0.1:11434', ollamaModel: 'llama3.2', embeddedModelFile: '/data/models/text/qwen.gguf' },
  images: { backend: 'none', chosenByDefault: true, sdModelDir: '/data/models/sd', automatic1111Url: undefined },
  database: { kind: 'embedded' },
  takesOverDownloads: true,
};

/** Shared downloads whose downloading process dies when `dead` is set: it says nothing more, and its record lapses. */
class DyingShared implements SharedDownloads<SharedDownload> {
  dead = false;
  private readonly alive = new InProcessSharedDownloads<SharedDownload>();
  claim(component: string): Promise<boolean> {
    return this.alive.claim(component);
  }
  async publish(component: string, record: SharedDownload): Promise<void> {
    if (!this.dead) await this.alive.publish(component, record);
  }
  release(component: string): Promise<void> {
    return this.alive.release(component);
  }
  async latest(component: string): Promise<SharedDownload | null> {
    return this.dead ? null : this.alive.latest(component);
  }
  subscribe(component: string, listener: (record: SharedDownload) => void): Promise<() => void> {
    return this.alive.subscribe(component, listener);
  }
}

/**
 * Shared downloads as Redis keeps them for several processes: `process()` is one process's view.
 * `kill()` on a view is that process dying: it says nothing more, and its claim and RUNNING
 * record are gone, as they are CLAIM_TTL_MS after it last renewed them.
 */
class LapsingShared {
  private readonly claims = new Map<string, object>();
  private readonly records = new Map<string, SharedDownload>();
  private readonly listeners = new Map<string, Set<(record: SharedDownload) => void>>();

  process(): SharedDownloads<SharedDownload> & { kill(): void } {
    const self = {};
    let dead = false;
    return {
      claim: async (component) => {
        if (dead || this.claims.has(component)) return false;
        this.claims.set(component, self);
        return true;
      },
      publish: async (component, record) => {
        if (dead) return;
        this.records.set(component, record);
        for (const listener of this.listeners.get(component) ?? []) listener(record);
      },
      release: async (component) => {
        if (this.claims.get(component) === self) this.claims.delete(component);
      },
      latest: async (component) => this.records.get(component) ?? null,
      subscribe: async (component, listener) => {
        const set = this.listeners.get(component) ?? new Set();
        set.add(listener);
        this.listeners.set(component, set);
        return () => set.delete(listener);
      },
      kill: () => {
        dead = true;
        for (const [component, holder] of this.claims) {
          if (holder !== self) continue;
          this.claims.delete(component);
          if (this.records.get(component)?.progress.state === DownloadState.RUNNING) this.records.delete(component);
        }
      },
    };
  }
}

/** A set-up service; two made with one `shared` stand for two server processes sharing REDIS_URL. */
function service(settings: Partial<SetupSettings> = {}, shared: SharedDownloads<SharedDownload> = new InProcessSharedDownloads<SharedDownload>()) {
  const probes = new MemoryProbes();
  const transfers = new ManualTransfers();
  const installed: SetupComponent[] = [];
  let now = 0;
  const setup = new SetupService(
    { ...SETTINGS, ...settings },
    { probes, hub: transfers, ollama: transfers, shared },
    pino({ level: 'silent' }),
    { installed: (component) => installed.push(component) },
    () => now,
  );
  return { setup, probes, transfers, installed, at: (ms: number) => (now = ms) };
}

/** Collects a component's progress stream until it ends. */
function collect(setup: SetupService, component: SetupComponent): { events: DownloadProgress[]; done: Promise<DownloadProgress[]> } {
  const events: DownloadProgress[] = [];
  const done = (async () => {
    for await (const event of setup.follow(component)) events.push(event);
    return events;
  })();
  return { events, done };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('the model catalog', () => {
  it('has one default per role, each with a size and a licence; the default picture model allows commercial use and SD-Turbo is marked non-commercial', () => {
    for (const role of Object.values(ModelRole)) expect(MODEL_CATALOG.filter((model) => model.role === role && model.default)).toHaveLength(1);
    expect(defaultModel(ModelRole.PICTURES).license).toMatchObject({ id: 'creativeml-openrail-m', commercialUse: true });
    expect(defaultModel(ModelRole.EMBEDDED_TEXT)).toMatchObject({
      source: { repo: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF', file: 'qwen2.5-1.5b-instruct-q4_k_m.gguf' },
      license: { id: 'apache-2.0', commercialUse: true },
    });
    const turbo = MODEL_CATALOG.find((model) => model.id === 'sd-turbo');
    expect(turbo).toMatchObject({ default: false, license: { commercialUse: false } });
    expect(turbo?.title).toMatch(/non-commercial/);
  });
});

describe('SetupService.report', () => {
  it('with TEXT_BACKEND unset and no Ollama, the story model is the embedded GGUF: missing, then ready once the file is there', async () => {
    const { setup, probes, transfers } = service();
    transfers.installed = null;
    const missing = await setup.status(SetupComponent.STORY_MODEL);
    expect(missing).toMatchObject({
      state: ComponentState.MISSING,
      backend: 'embedded',
      action: {
        kind: SetupActionKind.EMBEDDED_MODEL_DOWNLOAD,
        destination: '/data/models/text/qwen.gguf',
        sizeBytes: defaultModel(ModelRole.EMBEDDED_TEXT).sizeBytes,
      },
    });
    probes.files.add('/data/models/text/qwen.gguf');
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({ state: ComponentState.READY, backend: 'embedded', action: null });
  });

  it('prefers an Ollama that answers, matching `name` to `name:latest`', async () => {
    const { setup, transfers } = service();
    transfers.installed = ['llama3.2:latest'];
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({ state: ComponentState.READY, backend: 'ollama' });
    transfers.installed = ['qwen3:8b'];
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.MISSING,
      action: { kind: SetupActionKind.OLLAMA_PULL, source: 'llama3.2', license: { id: 'llama3.2' } },
    });
  });

  it('with TEXT_BACKEND unset and Ollama lacking the model, shows the embedded GGUF on disk as ready with the pull on offer; without the GGUF, the pull', async () => {
    const { setup, probes, transfers } = service();
    transfers.installed = ['qwen2.5:1.5b-instruct'];
    probes.files.add('/data/models/text/qwen.gguf');
    const report = await setup.report();
    expect(report.components.find((c) => c.component === SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.READY,
      backend: 'embedded',
      message:
        'Ollama at http://127.0.0.1:11434 does not have the model "llama3.2": the embedded model /data/models/text/qwen.gguf is used; pull it into Ollama (here, or `ollama pull llama3.2`) to use Ollama',
      action: { kind: SetupActionKind.OLLAMA_PULL, source: 'llama3.2', license: { id: 'llama3.2' } },
    });
    // Pulling is optional here: only the picture model (missing) keeps the machine from being ready.
    expect(report.components.filter((c) => c.state !== ComponentState.READY).map((c) => c.component)).toEqual([SetupComponent.PICTURE_MODEL]);
    // The pull runs from the panel as on a bare machine, and the panel then shows Ollama.
    await setup.startDownload(SetupComponent.STORY_MODEL);
    expect(transfers.started.map((transfer) => transfer.what)).toEqual(['ollama:llama3.2']);
    transfers.started[0].finish();
    await setup.whenDownloaded(SetupComponent.STORY_MODEL, AbortSignal.timeout(5000));
    transfers.installed = ['llama3.2:latest'];
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({ state: ComponentState.READY, backend: 'ollama', action: null });

    probes.files.clear();
    transfers.installed = ['qwen2.5:1.5b-instruct'];
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.MISSING,
      backend: 'ollama',
      action: { kind: SetupActionKind.OLLAMA_PULL, source: 'llama3.2' },
    });
  });

  it('keeps a story model served by the embedded GGUF READY while its optional Ollama pull runs, with the download attached, here and in another process', async () => {
    const shared = new InProcessSharedDownloads<SharedDownload>();
    const images = { backend: 'none', chosenByDefault: false, sdModelDir: '/data/models/sd', automatic1111Url: undefined } as const;
    const here = service({ images }, shared);
    const there = service({ images }, shared);
    for (const { probes, transfers } of [here, there]) {
      transfers.installed = ['qwen2.5:1.5b-instruct'];
      probes.files.add('/data/models/text/qwen.gguf');
    }
    await here.setup.startDownload(SetupComponent.STORY_MODEL);
    here.transfers.started[0].options.onProgress(1000, 4000);
    for (const { setup } of [here, there]) {
      const report = await setup.report();
      // Books are being written on the embedded model meanwhile: the machine is ready.
      expect(report.ready).toBe(true);
      expect(report.components.find((c) => c.component === SetupComponent.STORY_MODEL)).toMatchObject({
        state: ComponentState.READY,
        backend: 'embedded',
        message:
          'Ollama at http://127.0.0.1:11434 does not have the model "llama3.2": the embedded model /data/models/text/qwen.gguf is used; ' +
          'pull it into Ollama (here, or `ollama pull llama3.2`) to use Ollama. Downloading Llama 3.2 3B Instruct (Ollama, Q4_K_M)',
        action: { kind: SetupActionKind.OLLAMA_PULL, source: 'llama3.2' },
        download: { state: DownloadState.RUNNING },
      });
    }
    expect((await here.setup.status(SetupComponent.STORY_MODEL)).download).toMatchObject({ bytesDone: 1000, bytesTotal: 4000 });
    // Pressing Download in the other process joins the pull rather than starting a second one.
    expect(await there.setup.startDownload(SetupComponent.STORY_MODEL)).toMatchObject({ state: DownloadState.RUNNING });
    expect(there.transfers.started).toEqual([]);
    here.transfers.started[0].finish();
    expect(await here.setup.whenDownloaded(SetupComponent.STORY_MODEL, AbortSignal.timeout(5000))).toEqual({ ok: true });
  });

  it('with TEXT_BACKEND=ollama, a GGUF on disk changes nothing: the pull is what fixes a missing model', async () => {
    const { setup, probes, transfers } = service({
      text: { backend: 'ollama', ollamaBaseUrl: 'http://127.0.0.1:11434', ollamaModel: 'llama3.2', embeddedModelFile: '/data/models/text/qwen.gguf' },
    });
    transfers.installed = [];
    probes.files.add('/data/models/text/qwen.gguf');
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.MISSING,
      backend: 'ollama',
      action: { kind: SetupActionKind.OLLAMA_PULL },
    });
  });

  it('says what to start when a server it needs does not answer, with nothing to download', async () => {
    const openai = service({ text: { backend: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', model: 'qwen' } });
    openai.probes.textServerDown = 'The OpenAI-compatible server at http://127.0.0.1:8080/v1 is not reachable';
    expect(await openai.setup.status(SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.UNREACHABLE,
      message: 'The OpenAI-compatible server at http://127.0.0.1:8080/v1 is not reachable',
      action: null,
    });
    const a1111 = service({ images: { backend: 'automatic1111', chosenByDefault: false, sdModelDir: '/sd', automatic1111Url: 'http://gpu:7860' } });
    a1111.probes.automatic1111Down = 'connect ECONNREFUSED';
    expect(await a1111.setup.status(SetupComponent.PICTURE_MODEL)).toMatchObject({ state: ComponentState.UNREACHABLE, action: null });
    a1111.probes.databaseDown = 'connection refused';
    const report = await a1111.setup.report();
    expect(report.ready).toBe(false);
    expect(report.components.find((c) => c.component === SetupComponent.DATABASE)).toMatchObject({
      state: ComponentState.UNREACHABLE,
      backend: 'pglite',
      message: 'The database does not answer: connection refused',
    });
  });

  it('is ready when every component is ready or off', async () => {
    const { setup, probes, transfers } = service({ images: { backend: 'none', chosenByDefault: false, sdModelDir: '/sd', automatic1111Url: undefined } });
    transfers.installed = ['llama3.2:latest'];
    const report = await setup.report();
    expect(report.components.map((c) => c.state)).toEqual([ComponentState.READY, ComponentState.OFF, ComponentState.READY]);
    expect(report.ready).toBe(true);
    probes.databaseDown = 'gone';
    expect((await setup.report()).ready).toBe(false);
  });
});

describe('SetupService downloads', () => {
  it('reports bytes, speed over the last seconds and time left, and ends COMPLETED with the model installed', async () => {
    const { setup, transfers, installed, at } = service();
    const started = await setup.startDownload(SetupComponent.PICTURE_MODEL);
    expect(started).toMatchObject({ state: DownloadState.RUNNING, bytesDone: 0, bytesTotal: defaultModel(ModelRole.PICTURES).sizeBytes, bytesPerSecond: null });
    const stream = collect(setup, SetupComponent.PICTURE_MODEL);
    await flush();
    const [transfer] = transfers.started;
    expect(transfer.what).toBe('hub:TheyCallMeHex/LCM-Dreamshaper-V7-ONNX→/data/models/sd');
    at(1000);
    transfer.options.onProgress(1000, 5000);
    at(2000);
    transfer.options.onProgress(3000, 5000);
    await flush();
    expect(stream.events.at(-1)).toMatchObject({ bytesDone: 3000, bytesTotal: 5000, bytesPerSecond: 1500, secondsLeft: 2000 / 1500 });
    expect(await setup.status(SetupComponent.PICTURE_MODEL)).toMatchObject({ state: ComponentState.DOWNLOADING, download: { bytesDone: 3000 } });
    transfer.finish();
    const events = await stream.done;
    expect(events.at(-1)).toMatchObject({ state: DownloadState.COMPLETED, bytesDone: 5000, secondsLeft: 0, bytesPerSecond: null });
    expect(installed).toEqual([SetupComponent.PICTURE_MODEL]);
  });

  it('sends at most one progress event per 200 ms while bytes flow', async () => {
    const { setup, transfers, at } = service();
    await setup.startDownload(SetupComponent.PICTURE_MODEL);
    const stream = collect(setup, SetupComponent.PICTURE_MODEL);
    await flush();
    const [transfer] = transfers.started;
    at(1000);
    transfer.options.onProgress(100, 1000);
    at(1050);
    transfer.options.onProgress(200, 1000);
    at(1100);
    transfer.options.onProgress(300, 1000);
    await flush();
    expect(stream.events.map((event) => event.bytesDone)).toEqual([0, 100]);
    at(1300);
    transfer.options.onProgress(400, 1000);
    await flush();
    expect(stream.events.map((event) => event.bytesDone)).toEqual([0, 100, 400]);
    transfer.finish();
    await stream.done;
  });

  it('joins a second request, even one made while the first is still looking, to the one download', async () => {
    const { setup, transfers } = service();
    transfers.installed = null;
    const [first, second] = await Promise.all([setup.startDownload(SetupComponent.STORY_MODEL), setup.startDownload(SetupComponent.STORY_MODEL)]);
    const third = await setup.startDownload(SetupComponent.STORY_MODEL);
    await flush();
    expect([first.state, second.state, third.state]).toEqual([DownloadState.RUNNING, DownloadState.RUNNING, DownloadState.RUNNING]);
    expect(transfers.started.map((transfer) => transfer.what)).toEqual([
      'hub:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf→/data/models/text/qwen.gguf',
    ]);
    transfers.started[0].finish();
  });

  it('ends FAILED with the reason, tells whoever waits, and can be tried again', async () => {
    const { setup, transfers, installed } = service();
    transfers.installed = [];
    await setup.startDownload(SetupComponent.STORY_MODEL);
    await flush();
    const waiting = setup.whenDownloaded(SetupComponent.STORY_MODEL, new AbortController().signal);
    expect(await setup.isDownloading(SetupComponent.STORY_MODEL)).toBe(true);
    transfers.started[0].fail(new DownloadError('Ollama could not pull "llama3.2": pull model manifest: file does not exist'));
    const message = 'The story model download failed: Ollama could not pull "llama3.2": pull model manifest: file does not exist';
    expect(await waiting).toEqual({ ok: false, message });
    expect(await setup.isDownloading(SetupComponent.STORY_MODEL)).toBe(false);
    expect(await setup.status(SetupComponent.STORY_MODEL)).toMatchObject({
      state: ComponentState.MISSING,
      download: { state: DownloadState.FAILED, errorMessage: message },
    });
    expect(installed).toEqual([]);
    await setup.startDownload(SetupComponent.STORY_MODEL);
    expect(transfers.started).toHaveLength(2);
    transfers.started[1].finish();
  });

  it('follows with IDLE when no download ran, and answers whenDownloaded with null', async () => {
    const { setup } = service();
    expect(await collect(setup, SetupComponent.PICTURE_MODEL).done).toEqual([
      {
        component: SetupComponent.PICTURE_MODEL,
        state: DownloadState.IDLE,
        bytesDone: 0,
        bytesTotal: null,
        bytesPerSecond: null,
        secondsLeft: null,
        errorMessage: null,
      },
    ]);
    expect(await setup.whenDownloaded(SetupComponent.PICTURE_MODEL, new AbortController().signal)).toBeNull();
  });

  it('refuses to start what has nothing to download, saying why', async () => {
    const { setup } = service({ images: { backend: 'none', chosenByDefault: false, sdModelDir: '/sd', automatic1111Url: undefined } });
    await expect(setup.startDownload(SetupComponent.PICTURE_MODEL)).rejects.toThrow(
      new InvalidInputError('There is nothing to download for the picture model: Pictures are off (IMAGE_BACKEND=none): stories are text-only'),
    );
    await expect(setup.startDownload(SetupComponent.DATABASE)).rejects.toThrow(/^There is nothing to download for the database: The embedded database/);
  });

  it('stops running downloads on close, saying the next try resumes', async () => {
    const { setup, transfers } = service();
    await setup.startDownload(SetupComponent.PICTURE_MODEL);
    const stream = collect(setup, SetupComponent.PICTURE_MODEL);
    await flush();
    await setup.close();
    expect(transfers.started[0].options.signal.aborted).toBe(true);
    expect((await stream.done).at(-1)).toMatchObject({
      state: DownloadState.FAILED,
      errorMessage: 'The picture model download failed: the server stopped; what was downloaded is kept and the next try resumes from there',
    });
  });
});

describe('SetupService downloads seen from another process', () => {
  it('shows a download running in another process, joins it instead of starting a second, and follows it to the end', async () => {
    const shared = new InProcessSharedDownloads<SharedDownload>();
    const downloader = service({}, shared);
    const other = service({}, shared);
    await downloader.setup.startDownload(SetupComponent.PICTURE_MODEL);
    await flush();
    expect(await other.setup.status(SetupComponent.PICTURE_MODEL)).toMatchObject({
      state: ComponentState.DOWNLOADING,
      download: { state: DownloadState.RUNNING, bytesDone: 0 },
      action: { kind: SetupActionKind.PICTURE_MODEL_DOWNLOAD },
    });
    const stream = collect(other.setup, SetupComponent.PICTURE_MODEL);
    expect(await other.setup.startDownload(SetupComponent.PICTURE_MODEL)).toMatchObject({ state: DownloadState.RUNNING });
    await flush();
    expect(other.transfers.started).toEqual([]);

    const [transfer] = downloader.transfers.started;
    downloader.at(1000);
    transfer.options.onProgress(2000, 5000);
    transfer.finish();
    const events = await stream.done;
    expect(events.map((event) => [event.state, event.bytesDone])).toEqual([
      [DownloadState.RUNNING, 0],
      [DownloadState.RUNNING, 2000],
      [DownloadState.COMPLETED, 5000],
    ]);
    expect(await other.setup.status(SetupComponent.PICTURE_MODEL)).toMatchObject({ download: { state: DownloadState.COMPLETED } });
    // The claim was given back: either process may download again.
    expect(await shared.claim(SetupComponent.PICTURE_MODEL)).toBe(true);
  });

  it('lets a generation in another process wait for the download and learn how it ended', async () => {
    const shared = new InProcessSharedDownloads<SharedDownload>();
    const downloader = service({}, shared);
    const worker = service({}, shared);
    downloader.transfers.installed = [];
    await downloader.setup.startDownload(SetupComponent.STORY_MODEL);
    await flush();
    expect(await worker.setup.isDownloading(SetupComponent.STORY_MODEL)).toBe(true);
    const waiting = worker.setup.whenDownloaded(SetupComponent.STORY_MODEL, new AbortController().signal);
    await flush();
    downloader.transfers.started[0].fail(new DownloadError('Ollama could not pull "llama3.2": pull model manifest: file does not exist'));
    expect(await waiting).toEqual({
      ok: false,
      message: 'The story model download failed: Ollama could not pull "llama3.2": pull model manifest: file does not exist',
    });
    expect(await worker.setup.isDownloading(SetupComponent.STORY_MODEL)).toBe(false);

    await downloader.setup.startDownload(SetupComponent.STORY_MODEL);
    await flush();
    const cancelled = new AbortController();
    const abandoned = worker.setup.whenDownloaded(SetupComponent.STORY_MODEL, cancelled.signal);
    const completed = worker.setup.whenDownloaded(SetupComponent.STORY_MODEL, new AbortController().signal);
    await flush();
    cancelled.abort(new Error('cancelled'));
    await expect(abandoned).rejects.toThrow('cancelled');
    downloader.transfers.started[1].finish();
    expect(await completed).toEqual({ ok: true });
  });

  it('ends a follower and a waiting generation FAILED when the process running the download is gone and none takes it over', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const shared = new DyingShared();
      const downloader = service({}, shared);
      const other = service({ takesOverDownloads: false }, shared);
      await downloader.setup.startDownload(SetupComponent.PICTURE_MODEL);
      await flush();
      const stream = collect(other.setup, SetupComponent.PICTURE_MODEL);
      const waiting = other.setup.whenDownloaded(SetupComponent.PICTURE_MODEL, new AbortController().signal);
      await flush();
      shared.dead = true;
      // One round for another process to take it over, then it is given up.
      await vi.advanceTimersByTimeAsync(30_000);
      expect(stream.events.map((event) => event.state)).toEqual([DownloadState.RUNNING]);
      await vi.advanceTimersByTimeAsync(30_000);
      const gone = 'The picture model download stopped: the server process running it is gone; start it again';
      expect((await stream.done).map((event) => [event.state, event.errorMessage])).toEqual([
        [DownloadState.RUNNING, null],
        [DownloadState.FAILED, gone],
      ]);
      expect(await waiting).toEqual({ ok: false, message: gone });
      await downloader.setup.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('SetupService taking over a download whose process died', () => {
  /** Runs `body` with the lapse watch's interval under the test's hand. */
  async function withFakeIntervals(body: () => Promise<void>): Promise<void> {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      await body();
    } finally {
      vi.useRealTimers();
    }
  }

  it('continues the download in a following process from where it stood, and a generation waiting in a worker proceeds', () =>
    withFakeIntervals(async () => {
      const shared = new LapsingShared();
      const dying = shared.process();
      const downloader = service({}, dying);
      const api = service({}, shared.process());
      const worker = service({ takesOverDownloads: false }, shared.process());
      await downloader.setup.startDownload(SetupComponent.PICTURE_MODEL);
      downloader.transfers.started[0].options.onProgress(2000, 5000);
      await flush();
      const stream = collect(api.setup, SetupComponent.PICTURE_MODEL);
      const waiting = worker.setup.whenDownloaded(SetupComponent.PICTURE_MODEL, new AbortController().signal);
      await flush();

      dying.kill();
      await vi.advanceTimersByTimeAsync(30_000);
      expect(api.transfers.started.map((transfer) => transfer.what)).toEqual(downloader.transfers.started.map((transfer) => transfer.what));
      expect(worker.transfers.started).toEqual([]);
      expect(await api.setup.status(SetupComponent.PICTURE_MODEL)).toMatchObject({
        state: ComponentState.DOWNLOADING,
        download: { state: DownloadState.RUNNING, bytesDone: 2000, bytesTotal: 5000 },
      });
      const [resumed] = api.transfers.started;
      api.at(1000);
      resumed.options.onProgress(3000, 5000);
      resumed.finish();
      expect((await stream.done).map((event) => [event.state, event.bytesDone])).toEqual([
        [DownloadState.RUNNING, 2000],
        [DownloadState.RUNNING, 2000],
        [DownloadState.RUNNING, 3000],
        [DownloadState.COMPLETED, 5000],
      ]);
      expect(await waiting).toEqual({ ok: true });
      expect(api.installed).toEqual([SetupComponent.PICTURE_MODEL]);
      await downloader.setup.close();
    }));

  it('is taken over by exactly one of two following processes', () =>
    withFakeIntervals(async () => {
      const shared = new LapsingShared();
      const dying = shared.process();
      const downloader = service({}, dying);
      const followers = [service({}, shared.process()), service({}, shared.process())];
      await downloader.setup.startDownload(SetupComponent.STORY_MODEL);
      await flush();
      const streams = followers.map((follower) => collect(follower.setup, SetupComponent.STORY_MODEL));
      const waits = followers.map((follower) => follower.setup.whenDownloaded(SetupComponent.STORY_MODEL, new AbortController().signal));
      await flush();

      dying.kill();
      await vi.advanceTimersByTimeAsync(30_000);
      const takers = followers.filter((follower) => follower.transfers.started.length > 0);
      expect(takers.map((taker) => taker.transfers.started.length)).toEqual([1]);
      takers[0].transfers.started[0].finish();
      for (const stream of streams) expect((await stream.done).at(-1)?.state).toBe(DownloadState.COMPLETED);
      expect(await Promise.all(waits)).toEqual([{ ok: true }, { ok: true }]);
      await downloader.setup.close();
    }));

  it('counts takeovers without progress in the record, and starts counting again once bytes flow', () =>
    withFakeIntervals(async () => {
      const shared = new LapsingShared();
      const dying = shared.process();
      const downloader = service({}, dying);
      const view = shared.process();
      const api = service({}, view);
      await downloader.setup.startDownload(SetupComponent.PICTURE_MODEL);
      await flush();
      const stream = collect(api.setup, SetupComponent.PICTURE_MODEL);
      await flush();
      dying.kill();
      await vi.advanceTimersByTimeAsync(30_000);
      expect(await view.latest(SetupComponent.PICTURE_MODEL)).toMatchObject({ takeovers: 1 });
      api.transfers.started[0].options.onProgress(10, 5000);
      await flush();
      expect(await view.latest(SetupComponent.PICTURE_MODEL)).toMatchObject({ takeovers: 0, progress: { bytesDone: 10 } });
      api.transfers.started[0].finish();
      await stream.done;
      await downloader.setup.close();
    }));

  it('ends FAILED, saying the processes running it kept dying, when taken over three times in a row without progress', () =>
    withFakeIntervals(async () => {
      const shared = new LapsingShared();
      const followers = [1, 2, 3, 4].map(() => {
        const view = shared.process();
        return { view, ...service({}, view) };
      });
      const dying = shared.process();
      const downloader = service({}, dying);
      await downloader.setup.startDownload(SetupComponent.PICTURE_MODEL);
      await flush();
      const streams = followers.map((follower) => collect(follower.setup, SetupComponent.PICTURE_MODEL));
      await flush();
      const kept =
        'The picture model download failed: the server processes running it kept dying (3 times in a row without getting further; out of memory, or restarted?); what was downloaded is kept, start it again once they stay up';

      // Each process that takes it over dies before a byte arrives.
      dying.kill();
      for (let round = 1; round <= 3; round++) {
        await vi.advanceTimersByTimeAsync(30_000);
        const takers = followers.filter((follower) => follower.transfers.started.length > 0);
        expect(takers).toHaveLength(round);
        takers.at(-1)?.view.kill();
      }
      await vi.advanceTimersByTimeAsync(30_000);
      expect(followers.filter((follower) => follower.transfers.started.length > 0)).toHaveLength(3);
      const survivor = followers.find((follower) => follower.transfers.started.length === 0);
      const events = await streams[followers.indexOf(survivor as (typeof followers)[number])].done;
      expect(events.at(-1)).toMatchObject({ state: DownloadState.FAILED, errorMessage: kept });
      expect(await survivor?.view.latest(SetupComponent.PICTURE_MODEL)).toMatchObject({ progress: { state: DownloadState.FAILED } });
      expect(await survivor?.view.claim(SetupComponent.PICTURE_MODEL, 30_000)).toBe(true);
      await downloader.setup.close();
      for (const follower of followers) await follower.setup.close();
    }));
});

describe('TransferRate', () => {
  it('measures over the last window only, so a stall shows', () => {
    const rate = new TransferRate(5000);
    rate.add(0, 0);
    expect(rate.bytesPerSecond()).toBeNull();
    rate.add(1000, 10_000);
    expect(rate.bytesPerSecond()).toBe(10_000);
    expect(rate.secondsLeft(10_000, 50_000)).toBe(4);
    rate.add(10_000, 100_000);
    rate.add(16_000, 100_000);
    // The window now starts at the sample from 10 s: nothing came in the last 6 s.
    expect(rate.bytesPerSecond()).toBe(0);
    expect(rate.secondsLeft(100_000, 200_000)).toBeNull();
    expect(rate.secondsLeft(100_000, null)).toBeNull();
  });
});
