import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OllamaModelStore, type OllamaPullSettings } from '../../src/adapters/downloads/ollama-models.js';
import { DownloadError } from '../../src/ports/model-downloads.js';
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions, type PullStall } from '../support/fake-ollama.js';

/**
 * Ollama's `/api/pull` through OllamaModelStore against a fake Ollama on loopback that
 * keeps its partial layers between requests, as Ollama does, and stalls on demand: silent
 * with the connection open, repeating its last line without a new byte, or before the
 * response headers; or cuts the connection mid-stream. Stall timeouts are a few hundred
 * milliseconds; nothing here measures time.
 */
const STALL_MS = 150;
/** Waits before retries, small so that the suite stays quick; the defaults are seconds. */
const SETTINGS: OllamaPullSettings = { stallTimeoutMs: STALL_MS, retryDelaysMs: [5, 10, 20] };
const LAYERS = [1_500_000, 12_000, 485];
const TOTAL = LAYERS.reduce((sum, size) => sum + size, 0);
/** The first layer's bytes at step 2 of 4, where the stalls below stick. */
const AT_STALL = 750_000;

let ollama: FakeOllama | null = null;

afterEach(async () => {
  await ollama?.close();
  ollama = null;
});

interface Pull {
  outcome: Promise<void>;
  progress: [number, number | null][];
  retries: string[];
  url: string;
}

async function pull(fake: Partial<FakeOllamaOptions>, settings: OllamaPullSettings = SETTINGS, signal = new AbortController().signal): Promise<Pull> {
  ollama = await startFakeOllama({ modelInstalled: false, pullLayers: LAYERS, pullStepsPerLayer: 4, ...fake });
  const store = new OllamaModelStore(ollama.url, settings);
  const progress: [number, number | null][] = [];
  const retries: string[] = [];
  const outcome = store.pull('llama3.2', { signal, onProgress: (done, total) => progress.push([done, total]), onRetry: (reason) => retries.push(reason) });
  // Read by the assertions; a rejection is looked at there.
  outcome.catch(() => undefined);
  return { outcome, progress, retries, url: ollama.url };
}

function expectNeverBackwards(progress: [number, number | null][]) {
  for (const [index, [done]] of progress.entries()) if (index > 0) expect(done).toBeGreaterThanOrEqual(progress[index - 1][0]);
}

const stall = (kind: PullStall['kind'], times: number): PullStall => ({ kind, atStep: 2, times });

/** The DownloadError a pull ends with; fails the test when it ends otherwise. */
async function downloadErrorOf(outcome: Promise<void>): Promise<DownloadError> {
  const error = await outcome.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DownloadError);
  return error as DownloadError;
}
describe('OllamaModelStore.pull', () => {
  it('pulls in one request when Ollama keeps making progress', async () => {
    const { outcome, progress, retries } = await pull({});
    await outcome;
    expect(ollama?.pulls).toEqual(['llama3.2']);
    expect(retries).toEqual([]);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
    expect(ollama?.options.modelInstalled).toBe(true);
  });

  it.each([
    ['silent', 'stops sending with the connection open'],
    ['repeating', 'repeats its last line without a new byte, as Ollama ticks while its registry download is stuck'],
  ] as const)('a pull that goes %s once is asked for again and resumes where it was (%s)', async (kind, _how) => {
    const { outcome, progress, retries, url } = await pull({ pullStall: stall(kind, 1) });
    await outcome;
    expect(retries).toEqual([
      `Ollama at ${url} made no progress pulling "llama3.2" for 0.15 s after "pulling aaaaaaaaaaaa"; pulling again, Ollama resumes what it fetched`,
    ]);
    expect(ollama?.pulls).toEqual(['llama3.2', 'llama3.2']);
    expect(ollama?.abandonedPulls).toBe(1);
    // The second request reports the first layer from where Ollama kept it, not from 0.
    const resumedAt = progress.findIndex(([done], index) => index > 0 && done === AT_STALL && progress[index - 1][0] === AT_STALL);
    expect(progress.slice(0, resumedAt + 1)).toEqual([
      [375_000, 1_500_000],
      [AT_STALL, 1_500_000],
      [AT_STALL, 1_500_000],
    ]);
    expectNeverBackwards(progress);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
    expect(ollama?.options.modelInstalled).toBe(true);
  });

  it('an Ollama that holds back even its response headers is given the same stall timeout, then asked again', async () => {
    const { outcome, progress, retries, url } = await pull({ pullStall: stall('before-headers', 1) });
    await outcome;
    expect(retries).toEqual([
      `Ollama at ${url} made no progress pulling "llama3.2" for 0.15 s while waiting for its answer; pulling again, Ollama resumes what it fetched`,
    ]);
    expect(ollama?.pulls).toHaveLength(2);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
  });

  it('a pull whose connection is cut mid-stream is asked for again like a stalled one, and the progress goes on from where it was', async () => {
    const { outcome, progress, retries, url } = await pull({ pullStall: stall('cut', 1) });
    await outcome;
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(
      new RegExp(
        `^Ollama at ${url} lost the connection pulling "llama3\\.2" after "pulling aaaaaaaaaaaa" \\(.+\\); pulling again, Ollama resumes what it fetched$`,
      ),
    );
    expect(ollama?.pulls).toEqual(['llama3.2', 'llama3.2']);
    expect(progress).toContainEqual([AT_STALL, 1_500_000]);
    expectNeverBackwards(progress);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
    expect(ollama?.options.modelInstalled).toBe(true);
  });

  it('fails with what to do when the connection is cut on every request, after three in a row that bring no new byte', async () => {
    const { outcome, progress, retries, url } = await pull({ pullStall: stall('cut', Number.POSITIVE_INFINITY) });
    expect((await downloadErrorOf(outcome)).message).toMatch(
      new RegExp(
        `^Ollama at ${url} lost the connection pulling "llama3\\.2" after "pulling aaaaaaaaaaaa" \\(.+\\), with no new byte in 3 requests in a row: ` +
          "check Ollama's log, the network to it and that it can reach its registry \\(restart Ollama if it hangs\\), then start the download again; " +
          'Ollama keeps what it fetched and resumes from there$',
      ),
    );
    expect(ollama?.pulls).toHaveLength(4);
    expect(retries).toHaveLength(3);
    expect(progress.at(-1)).toEqual([AT_STALL, 1_500_000]);
    expect(ollama?.options.modelInstalled).toBe(false);
  });

  it('waits through a restart of Ollama during the pull: refused requests count as fruitless tries, and the pull resumes once it is back', async () => {
    const fake = await startFakeOllama({ modelInstalled: false, pullLayers: LAYERS, pullStepsPerLayer: 4, pullStall: stall('cut', 1) });
    ollama = fake;
    const retries: string[] = [];
    const progress: [number, number | null][] = [];
    await new OllamaModelStore(fake.url, SETTINGS).pull('llama3.2', {
      signal: new AbortController().signal,
      onProgress: (done, total) => progress.push([done, total]),
      onRetry: (reason) => {
        retries.push(reason);
        // Ollama goes down as its connection is cut, and is back after refusing two requests.
        if (retries.length === 1) fake.goDown();
        if (retries.length === 3) void fake.comeBack();
      },
    });
    expect(retries.slice(1)).toEqual(
      Array(2).fill(
        `Ollama at ${fake.url} refused the connection pulling "llama3.2" again, as while it restarts (fetch failed: connect ECONNREFUSED ${fake.url.slice(7)}); ` +
          'pulling again, Ollama resumes what it fetched',
      ),
    );
    expect(fake.pulls).toEqual(['llama3.2', 'llama3.2']);
    expect(progress).toContainEqual([AT_STALL, 1_500_000]);
    expectNeverBackwards(progress);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
    expect(fake.options.modelInstalled).toBe(true);
  });

  it('fails with what to do when Ollama stays down after going away mid-pull, after three refused requests in a row', async () => {
    const fake = await startFakeOllama({ modelInstalled: false, pullLayers: LAYERS, pullStepsPerLayer: 4, pullStall: stall('cut', 1) });
    ollama = fake;
    const retries: string[] = [];
    const outcome = new OllamaModelStore(fake.url, SETTINGS).pull('llama3.2', {
      signal: new AbortController().signal,
      onProgress: () => undefined,
      onRetry: (reason) => {
        if (retries.push(reason) === 1) fake.goDown();
      },
    });
    await expect(outcome).rejects.toThrow(
      new DownloadError(
        `Ollama at ${fake.url} refused the connection pulling "llama3.2" again, as while it restarts (fetch failed: connect ECONNREFUSED ${fake.url.slice(7)}), ` +
          "with no new byte in 3 requests in a row: check Ollama's log, the network to it and that it can reach its registry (restart Ollama if it hangs), " +
          'then start the download again; Ollama keeps what it fetched and resumes from there',
      ),
    );
    expect(fake.pulls).toEqual(['llama3.2']);
    expect(retries).toHaveLength(3);
  });

  it('takes a connection reset before the first answer as a fruitless try, not as an Ollama that is not running, and asks again', async () => {
    const { outcome, progress, retries, url } = await pull({ pullStall: { kind: 'reset-before-headers', atStep: 0, times: 1 } });
    await outcome;
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(
      new RegExp(
        `^Ollama at ${url} reset the connection pulling "llama3\\.2" before answering, as a proxy in front of it may \\(fetch failed: .+\\); ` +
          'pulling again, Ollama resumes what it fetched$',
      ),
    );
    expect(ollama?.pulls).toEqual(['llama3.2', 'llama3.2']);
    expect(progress.at(-1)).toEqual([TOTAL, TOTAL]);
  });

  it('fails after three requests in a row reset before an answer, saying so rather than to start Ollama', async () => {
    const { outcome, retries, url } = await pull({ pullStall: { kind: 'reset-before-headers', atStep: 0, times: Number.POSITIVE_INFINITY } });
    expect((await downloadErrorOf(outcome)).message).toMatch(
      new RegExp(
        `^Ollama at ${url} reset the connection pulling "llama3\\.2" before answering, as a proxy in front of it may \\(fetch failed: .+\\), ` +
          'with no new byte in 3 requests in a row: ',
      ),
    );
    expect(ollama?.pulls).toHaveLength(3);
    expect(retries).toHaveLength(2);
  });

  it("takes an {error} line as Ollama's answer and does not ask again", async () => {
    ollama = await startFakeOllama({ modelInstalled: false });
    const retries: string[] = [];
    const outcome = new OllamaModelStore(ollama.url, SETTINGS).pull('no-such-model', {
      signal: new AbortController().signal,
      onProgress: () => undefined,
      onRetry: (reason) => retries.push(reason),
    });
    await expect(outcome).rejects.toThrow(new DownloadError('Ollama could not pull "no-such-model": pull model manifest: file does not exist'));
    expect(ollama.pulls).toEqual(['no-such-model']);
    expect(retries).toEqual([]);
  });

  it('fails with what to do after three requests in a row that bring no new byte', async () => {
    const { outcome, progress, retries, url } = await pull({ pullStall: stall('repeating', Number.POSITIVE_INFINITY) });
    expect((await downloadErrorOf(outcome)).message).toBe(
      `Ollama at ${url} made no progress pulling "llama3.2" for 0.15 s after "pulling aaaaaaaaaaaa", with no new byte in 3 requests in a row: ` +
        "check Ollama's log, the network to it and that it can reach its registry (restart Ollama if it hangs), then start the download again; " +
        'Ollama keeps what it fetched and resumes from there',
    );
    // The first request brought bytes before it stuck; the three after it brought none.
    expect(ollama?.pulls).toHaveLength(4);
    expect(retries).toHaveLength(3);
    expect(progress.at(-1)).toEqual([AT_STALL, 1_500_000]);
    expect(ollama?.options.modelInstalled).toBe(false);
    await vi.waitFor(() => expect(ollama?.abandonedPulls).toBe(4));
  });

  it('keeps going while each request brings new bytes before it stalls, however many stalls that makes', async () => {
    const fake = await startFakeOllama({ modelInstalled: false, pullLayers: LAYERS, pullStepsPerLayer: 8, pullStall: { kind: 'silent', atStep: 1, times: 5 } });
    ollama = fake;
    const retries: string[] = [];
    const progress: number[] = [];
    await new OllamaModelStore(fake.url, SETTINGS).pull('llama3.2', {
      signal: new AbortController().signal,
      onProgress: (done) => progress.push(done),
      onRetry: (reason) => {
        retries.push(reason);
        // The next request gets one step further before it sticks.
        fake.options.pullStall!.atStep++;
      },
    });
    expect(retries.map((reason) => reason.match(/after "[^"]+"/)?.[0])).toEqual(Array(5).fill('after "pulling aaaaaaaaaaaa"'));
    expect(fake.pulls).toHaveLength(6);
    expectNeverBackwards(progress.map((done) => [done, null]));
    expect(progress.at(-1)).toBe(TOTAL);
  });

  it('counts a request that never answered as one without progress, and honours a smaller number of tries', async () => {
    const { outcome, retries, url } = await pull({ pullStall: stall('before-headers', Number.POSITIVE_INFINITY) }, { ...SETTINGS, tries: 2 });
    await expect(outcome).rejects.toThrow(
      new DownloadError(
        `Ollama at ${url} made no progress pulling "llama3.2" for 0.15 s while waiting for its answer, with no new byte in 2 requests in a row: ` +
          "check Ollama's log, the network to it and that it can reach its registry (restart Ollama if it hangs), then start the download again; " +
          'Ollama keeps what it fetched and resumes from there',
      ),
    );
    expect(ollama?.pulls).toHaveLength(2);
    expect(retries).toHaveLength(1);
  });

  it("waits before asking again after a break, and the caller's signal ends that wait without another request", async () => {
    const stop = new AbortController();
    const { outcome, retries } = await pull({ pullStall: stall('cut', 1) }, { ...SETTINGS, retryDelaysMs: [60_000] }, stop.signal);
    await vi.waitFor(() => expect(retries).toHaveLength(1));
    const reason = new Error('the server is stopping');
    stop.abort(reason);
    await expect(outcome).rejects.toBe(reason);
    expect(ollama?.pulls).toEqual(['llama3.2']);
    expect(ollama?.options.modelInstalled).toBe(false);
  });

  it("stops at once on the caller's signal, without trying again", async () => {
    const stop = new AbortController();
    // The default stall timeout (60 s): only the signal can end this pull within the test's time.
    const { outcome, progress, retries } = await pull({ pullStall: stall('silent', Number.POSITIVE_INFINITY) }, {}, stop.signal);
    await vi.waitFor(() => expect(progress.at(-1)).toEqual([AT_STALL, 1_500_000]));
    const reason = new Error('the server is stopping');
    stop.abort(reason);
    await expect(outcome).rejects.toBe(reason);
    expect(ollama?.pulls).toEqual(['llama3.2']);
    expect(retries).toEqual([]);
    await vi.waitFor(() => expect(ollama?.abandonedPulls).toBe(1));
  });

  it("allows Ollama's silent hashing of the layers time in proportion to the model's size", async () => {
    // 50 MB at the assumed 25 MiB/s: about 1.9 s on top of the stall timeout; the fake hashes for 0.4 s.
    const { outcome, retries } = await pull({ pullLayers: [50_000_000], pullVerifyMs: 400 });
    await outcome;
    expect(retries).toEqual([]);
    expect(ollama?.pulls).toHaveLength(1);
  });

  it('takes hashing that outlasts that allowance as a stall; asked again, Ollama has the layers and finishes', async () => {
    const { outcome, progress, retries, url } = await pull({ pullLayers: [485], pullVerifyMs: 60_000 });
    await outcome;
    expect(retries).toEqual([
      `Ollama at ${url} made no progress pulling "llama3.2" for 0.15 s after "verifying sha256 digest"; pulling again, Ollama resumes what it fetched`,
    ]);
    expect(ollama?.pulls).toHaveLength(2);
    expect(progress.at(-1)).toEqual([485, 485]);
  });
});

describe('OllamaModelStore.installedModels', () => {
  /** A server that accepts connections and never answers, as a hung Ollama does. */
  async function hungServer(onTestFinished: (fn: () => void) => void): Promise<string> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
      server.close();
    });
    return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }

  it('takes an Ollama that accepts the connection but never answers as not answering (null), so the set-up panel still shows', async ({ onTestFinished }) => {
    const url = await hungServer(onTestFinished);
    expect(await new OllamaModelStore(url, { listTimeoutMs: 100 }).installedModels(new AbortController().signal)).toBeNull();
  });

  it("throws the caller's own abort rather than answering null", async ({ onTestFinished }) => {
    const url = await hungServer(onTestFinished);
    const caller = new AbortController();
    const listing = new OllamaModelStore(url, { listTimeoutMs: 60_000 }).installedModels(caller.signal);
    caller.abort(new Error('the panel stopped asking'));
    await expect(listing).rejects.toThrow('the panel stopped asking');
  });
});
