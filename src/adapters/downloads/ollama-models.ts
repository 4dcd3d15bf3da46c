import { DownloadError, type OllamaModels, type TransferOptions } from '../../ports/model-downloads.js';
import { modelNamesIn } from '../text/ollama-probe.js';

/**
 * Ollama's model store over its HTTP API: `GET /api/tags` lists what is
 * installed; `POST /api/pull` downloads a model and streams NDJSON progress,
 * one object a line: `{status}` for steps ("pulling manifest", "verifying
 * sha256 digest", "success"), `{status, digest, total, completed}` per layer
 * while it downloads, or `{error}` when it fails (also on HTTP 200).
 */
export class OllamaModelStore implements OllamaModels {
  constructor(private readonly baseUrl: string) {}

  async installedModels(signal: AbortSignal): Promise<string[] | null> {
    try {
      const response = await fetch(`${this.baseUrl}/api/tags`, { signal });
      if (!response.ok) return null;
      return modelNamesIn(await response.json());
    } catch {
      signal.throwIfAborted();
      return null;
    }
  }

  async pull(model: string, { onProgress, signal }: TransferOptions): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/api/pull`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true }),
        signal,
      });
    } catch (error) {
      signal.throwIfAborted();
      throw new DownloadError(`Ollama is not reachable at ${this.baseUrl} (${(error as Error).message}): start it with \`ollama serve\``, { cause: error });
    }
    if (!response.ok || !response.body) {
      throw new DownloadError(`Ollama at ${this.baseUrl} could not pull "${model}": ${await errorOf(response)}`);
    }
    // Each layer (blob) reports its own total and completed bytes; the model's are their sums.
    const layers = new Map<string, { total: number; completed: number }>();
    let succeeded = false;
    const decoder = new TextDecoder();
    let buffered = '';
    const read = (line: string) => {
      if (line.trim() === '') return;
      let event: { status?: string; digest?: string; total?: number; completed?: number; error?: string };
      try {
        event = JSON.parse(line);
      } catch {
        throw new DownloadError(`Ollama at ${this.baseUrl} sent a progress line that is not JSON while pulling "${model}": ${line.slice(0, 200)}`);
      }
      if (event.error) throw new DownloadError(`Ollama could not pull "${model}": ${event.error}`);
      if (event.digest && typeof event.total === 'number') {
        layers.set(event.digest, { total: event.total, completed: Math.min(event.total, event.completed ?? 0) });
        let total = 0;
        let completed = 0;
        for (const layer of layers.values()) {
          total += layer.total;
          completed += layer.completed;
        }
        onProgress(completed, total);
      }
      if (event.status === 'success') succeeded = true;
    };
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) read(line);
      }
      read(buffered + decoder.decode());
    } catch (error) {
      signal.throwIfAborted();
      if (error instanceof DownloadError) throw error;
      throw new DownloadError(
        `the connection to Ollama at ${this.baseUrl} broke while pulling "${model}" (${(error as Error).message}); start the download again`,
        {
          cause: error,
        },
      );
    }
    if (!succeeded) throw new DownloadError(`Ollama at ${this.baseUrl} ended the pull of "${model}" without saying it succeeded; start the download again`);
  }
}

async function errorOf(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    return (JSON.parse(text) as { error?: string }).error ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  }
}
