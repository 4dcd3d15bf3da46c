import { fetch as undiciFetch } from 'undici';
import { DOWNLOAD_STALL_TIMEOUT_MS, DownloadError, type OllamaModels, type TransferOptions } from '../../ports/model-downloads.js';
import { modelServerAgent } from '../http/model-server-fetch.js';
import { modelNamesIn } from '../text/ollama-probe.js';

/**
 * Requests in a row that stall or lose their connection without bringing a new byte before a
 * pull is given up. Each new request makes Ollama open fresh connections to its registry and
 * resume its partial blobs, which is what clears a stuck CDN connection; three fruitless
 * requests in a row mean a lasting cause (network down, Ollama hung) the user has to see to.
 */
const PULL_TRIES = 3;

/**
 * Waits (ms) before asking again after a stall or a broken connection, by how many requests in a
 * row brought no new byte: none (the one that failed did bring some) waits the first, one the
 * second, and so on, the last repeating. An Ollama that is restarting refuses connections for a
 * few seconds; asking again at once would only find it down.
 */
const PULL_RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 4000];

/** Socket errors of a connection Ollama (or a proxy in front of it) accepted and then dropped, before or while answering. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * The slowest rate (bytes/s) Ollama is assumed to hash a model at. After "verifying sha256
 * digest" it reads every layer it downloaded and sends nothing until done, so that silence is
 * allowed on top of the stall timeout in proportion to the model's size: 25 MiB/s is a Raspberry
 * Pi's SD card; disks and CPUs are usually ten times faster.
 */
const VERIFY_BYTES_PER_SECOND = 25 * 2 ** 20;

/** Ollama's step that hashes the downloaded layers without a word. */
const VERIFYING = 'verifying sha256 digest';

export interface OllamaPullSettings {
  /** No progress for this long (ms) abandons the request and pulls again (default DOWNLOAD_STALL_TIMEOUT_MS). */
  stallTimeoutMs?: number;
  /** Requests in a row that may stall or break without a new byte before the pull fails (default PULL_TRIES). */
  tries?: number;
  /** Waits (ms) before each retry, by how many fruitless requests in a row came before it (default PULL_RETRY_DELAYS_MS; the last repeats). */
  retryDelaysMs?: readonly number[];
  /** How long (ms) installedModels waits for Ollama's list before taking it as not answering (default LIST_TIMEOUT_MS). */
  listTimeoutMs?: number;
}

/** installedModels' wait for `GET /api/tags`, ms: a list Ollama answers in milliseconds; an Ollama that accepts connections but hangs is not answering. */
const LIST_TIMEOUT_MS = 1500;

interface PullEvent {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

/**
 * The model's bytes over every request of one pull: each layer's latest total and completed as
 * Ollama reports them (a new request reports them again from the blobs it kept, so progress
 * continues where it was), and which lines are news rather than Ollama's repeated ticks.
 */
class PullTally {
  private readonly layers = new Map<string, { total: number; completed: number }>();
  /** Last line per layer (or per status) in the current request. */
  private seen = new Map<string, string>();
  /** Most bytes done so far in this pull; a request that raises it made progress. */
  best = 0;
  total = 0;

  constructor(private readonly onProgress: TransferOptions['onProgress']) {}

  /** A new request: its first report of each layer is news again. */
  restart(): void {
    this.seen = new Map();
  }

  /** Takes one progress line, reporting the model's bytes; true when it says something new (a step, a layer, bytes moved). */
  take(event: PullEvent): boolean {
    const key = event.digest ?? event.status ?? '';
    const line = `${event.status}|${event.total}|${event.completed}`;
    if (this.seen.get(key) === line) return false;
    this.seen.set(key, line);
    if (event.digest && typeof event.total === 'number') {
      this.layers.set(event.digest, { total: event.total, completed: Math.min(event.total, event.completed ?? 0) });
      let total = 0;
      let completed = 0;
      for (const layer of this.layers.values()) {
        total += layer.total;
        completed += layer.completed;
      }
      this.total = total;
      this.best = Math.max(this.best, completed);
      this.onProgress(completed, total);
    }
    return true;
  }
}

/** How one request of a pull ended: a stall or a broken connection is asked for again. */
type RequestOutcome =
  | { kind: 'success' }
  | { kind: 'stalled'; silentMs: number; step: string }
  | { kind: 'broken'; reason: string; step: string }
  /** Reset before Ollama's headers: something accepted the connection and dropped it. */
  | { kind: 'reset'; reason: string }
  /** Refused on a retry: Ollama went away during the pull (restarting, most often). */
  | { kind: 'refused'; reason: string };

/**
 * Ollama's model store over its HTTP API: `GET /api/tags` lists what is
 * installed; `POST /api/pull` downloads a model and streams NDJSON progress,
 * one object a line: `{status}` for steps ("pulling manifest", "verifying
 * sha256 digest", "success"), `{status, digest, total, completed}` per layer
 * while it downloads (repeated every 60 ms even when no byte came), or
 * `{error}` when it fails (also on HTTP 200).
 *
 * A pull request that brings no news for the stall timeout, the wait for the
 * response headers included, is abandoned: Ollama keeps its partial blobs and
 * resumes them when the pull is asked for again, which this does up to
 * PULL_TRIES times in a row without a new byte. A connection that breaks once
 * Ollama has answered (reset, or closed mid-stream) is asked for again the same
 * way, and so is one reset before Ollama's headers (a proxy dropping it), and,
 * once the pull is under way, a refused connection (Ollama restarting). Each
 * retry waits PULL_RETRY_DELAYS_MS first, longer the more fruitless requests
 * came before it. An `{error}` line or an HTTP error status is not: that is Ollama's own
 * answer (no such model, registry refused, disk full), which asking again
 * would only repeat. undici's own 300 s header and body timeouts are off for
 * these requests, so the stall rule is the one limit.
 */
export class OllamaModelStore implements OllamaModels {
  constructor(
    private readonly baseUrl: string,
    private readonly settings: OllamaPullSettings = {},
  ) {}

  /** The models Ollama lists (`name:tag`); null when it does not answer within listTimeoutMs. Throws only `signal`'s reason. */
  async installedModels(signal: AbortSignal): Promise<string[] | null> {
    try {
      const waited = AbortSignal.any([signal, AbortSignal.timeout(this.settings.listTimeoutMs ?? LIST_TIMEOUT_MS)]);
      const response = await fetch(`${this.baseUrl}/api/tags`, { signal: waited });
      if (!response.ok) return null;
      return modelNamesIn(await response.json());
    } catch {
      signal.throwIfAborted();
      return null;
    }
  }

  async pull(model: string, options: TransferOptions): Promise<void> {
    const stallMs = this.settings.stallTimeoutMs ?? DOWNLOAD_STALL_TIMEOUT_MS;
    const tries = this.settings.tries ?? PULL_TRIES;
    const delays = this.settings.retryDelaysMs ?? PULL_RETRY_DELAYS_MS;
    const tally = new PullTally(options.onProgress);
    let fruitless = 0;
    for (let attempt = 0; ; attempt++) {
      const bestBefore = tally.best;
      tally.restart();
      const outcome = await this.request(model, tally, options.signal, stallMs, attempt > 0);
      if (outcome.kind === 'success') return;
      fruitless = tally.best > bestBefore ? 0 : fruitless + 1;
      const what = describeOutcome(outcome, model);
      if (fruitless >= tries) {
        throw new DownloadError(
          `Ollama at ${this.baseUrl} ${what}, with no new byte in ${tries} requests in a row: check Ollama's log, the network to it ` +
            'and that it can reach its registry (restart Ollama if it hangs), then start the download again; Ollama keeps what it fetched and resumes from there',
        );
      }
      options.onRetry?.(`Ollama at ${this.baseUrl} ${what}; pulling again, Ollama resumes what it fetched`);
      await wait(delays[Math.min(fruitless, delays.length - 1)] ?? 0, options.signal);
    }
  }

  /**
   * One `POST /api/pull`, followed until "success", until it stalls or until its connection breaks or is reset;
   * on a retry (`underWay`) a refused connection too. Throws DownloadError for anything else.
   */
  private async request(model: string, tally: PullTally, signal: AbortSignal, stallMs: number, underWay: boolean): Promise<RequestOutcome> {
    const stalled = new AbortController();
    let step = 'while waiting for its answer';
    let silentMs = stallMs;
    let watchdog: NodeJS.Timeout | undefined;
    const allow = (ms: number) => {
      clearTimeout(watchdog);
      silentMs = ms;
      watchdog = setTimeout(() => stalled.abort(), ms);
    };
    allow(stallMs);
    let succeeded = false;
    const read = (line: string) => {
      if (line.trim() === '') return;
      let event: PullEvent;
      try {
        event = JSON.parse(line);
      } catch {
        throw new DownloadError(`Ollama at ${this.baseUrl} sent a progress line that is not JSON while pulling "${model}": ${line.slice(0, 200)}`);
      }
      if (event.error) throw new DownloadError(`Ollama could not pull "${model}": ${event.error}`);
      if (event.status === 'success') succeeded = true;
      if (!tally.take(event)) return;
      if (event.status) step = `after "${event.status}"`;
      allow(event.status === VERIFYING ? stallMs + Math.ceil((tally.total / VERIFY_BYTES_PER_SECOND) * 1000) : stallMs);
    };
    try {
      const response = await undiciFetch(`${this.baseUrl}/api/pull`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true }),
        signal: AbortSignal.any([signal, stalled.signal]),
        dispatcher: modelServerAgent(0),
      }).catch((error: unknown) => {
        signal.throwIfAborted();
        if (stalled.signal.aborted) throw error;
        const code = socketCodeOf(error as Error);
        if (code && RESET_CODES.has(code)) return { kind: 'reset', reason: describeBreak(error as Error) } satisfies RequestOutcome;
        if (underWay && code === 'ECONNREFUSED') return { kind: 'refused', reason: describeBreak(error as Error) } satisfies RequestOutcome;
        throw new DownloadError(`Ollama is not reachable at ${this.baseUrl} (${(error as Error).message}): start it with \`ollama serve\``, {
          cause: error,
        });
      });
      // The connection was reset or refused: asked for again.
      if ('kind' in response) return response;
      if (!response.ok || !response.body) {
        throw new DownloadError(`Ollama at ${this.baseUrl} could not pull "${model}": ${await errorOf(response as unknown as Response)}`);
      }
      step = 'after its answer started';
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) read(line);
      }
      read(buffered + decoder.decode());
    } catch (error) {
      signal.throwIfAborted();
      if (error instanceof DownloadError) throw error;
      if (stalled.signal.aborted) return { kind: 'stalled', silentMs, step };
      // Only the response's body is read past the fetch, whose failures are DownloadErrors: this is the stream breaking.
      return { kind: 'broken', reason: describeBreak(error as Error), step };
    } finally {
      clearTimeout(watchdog);
    }
    if (!succeeded) throw new DownloadError(`Ollama at ${this.baseUrl} ended the pull of "${model}" without saying it succeeded; start the download again`);
    return { kind: 'success' };
  }
}

/** What went wrong in one request, for the retry notice and the final error: "lost the connection pulling "llama3.2" after …". */
function describeOutcome(outcome: Exclude<RequestOutcome, { kind: 'success' }>, model: string): string {
  switch (outcome.kind) {
    case 'stalled':
      return `made no progress pulling "${model}" for ${seconds(outcome.silentMs)} ${outcome.step}`;
    case 'broken':
      return `lost the connection pulling "${model}" ${outcome.step} (${outcome.reason})`;
    case 'reset':
      return `reset the connection pulling "${model}" before answering, as a proxy in front of it may (${outcome.reason})`;
    case 'refused':
      return `refused the connection pulling "${model}" again, as while it restarts (${outcome.reason})`;
  }
}

/** The socket error code under undici's "fetch failed" (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET), or null. */
function socketCodeOf(error: Error): string | null {
  const cause = error.cause as { code?: unknown } | undefined;
  return typeof cause?.code === 'string' ? cause.code : null;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it is aborted. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** undici's "terminated" with what ended the socket: "terminated: other side closed". */
function describeBreak(error: Error): string {
  const cause = error.cause instanceof Error ? error.cause.message : null;
  return cause ? `${error.message}: ${cause}` : error.message;
}

/** "60 s", "0.15 s". */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(2))} s`;
}

async function errorOf(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    return (JSON.parse(text) as { error?: string }).error ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  }
}
