/** What one look at Ollama found: the models it has (`name:tag`), or why it does not answer, in words for the log. */
export type OllamaProbeResult = { answers: true; models: string[] } | { answers: false; reason: string };

/**
 * Whether an Ollama server answers at `baseUrl` within `timeoutMs`, and with which
 * models: GET /api/tags, which every Ollama serves without loading a model. Never
 * throws; says why not in words for the log (a server there that is not Ollama
 * answers something other than Ollama's list, and counts as no Ollama).
 */
export async function probeOllama(baseUrl: string, timeoutMs: number): Promise<OllamaProbeResult> {
  try {
    const response = await fetch(`${baseUrl}/api/tags`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) {
      await response.body?.cancel();
      return { answers: false, reason: `it answered HTTP ${response.status}` };
    }
    const models = modelNamesIn(await response.json().catch(() => null));
    return models ? { answers: true, models } : { answers: false, reason: 'it answered GET /api/tags with something other than a list of models' };
  } catch (error) {
    const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError') return { answers: false, reason: `no answer within ${timeoutMs} ms` };
    // fetch says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, "bad port").
    return { answers: false, reason: err.cause?.code ?? err.cause?.message ?? err.message ?? String(error) };
  }
}

/**
 * The model names in a `GET /api/tags` body (`{models: [{name, model}, …]}`; both
 * fields, as Ollama versions fill one or both; `models: null` for none), without
 * repeats; null when the body is not such a list.
 */
export function modelNamesIn(body: unknown): string[] | null {
  if (typeof body !== 'object' || body === null || !('models' in body)) return null;
  const models = body.models ?? [];
  if (!Array.isArray(models)) return null;
  const names = models.flatMap((model: { name?: unknown; model?: unknown } | null) => [model?.name, model?.model]);
  return [...new Set(names.filter((name): name is string => typeof name === 'string' && name !== ''))];
}
