/** What one look at Ollama found; `reason` says why not in words for the log. */
export type OllamaProbeResult = { answers: true } | { answers: false; reason: string };

/**
 * Whether an Ollama server answers at `baseUrl` within `timeoutMs`: GET
 * /api/version, which every Ollama serves without loading a model. Never
 * throws; says why not in words for the start-up log.
 */
export async function probeOllama(baseUrl: string, timeoutMs: number): Promise<OllamaProbeResult> {
  try {
    const response = await fetch(`${baseUrl}/api/version`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok ? { answers: true } : { answers: false, reason: `it answered HTTP ${response.status}` };
  } catch (error) {
    const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError') return { answers: false, reason: `no answer within ${timeoutMs} ms` };
    // fetch says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, "bad port").
    return { answers: false, reason: err.cause?.code ?? err.cause?.message ?? err.message ?? String(error) };
  }
}
