/** Throws unless an AUTOMATIC1111-compatible server answers its API at `url` within `timeoutMs`. */
export async function probeAutomatic1111(url: string, timeoutMs: number): Promise<void> {
  const response = await fetch(`${url}/sdapi/v1/options`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`AUTOMATIC1111 at ${url} answered HTTP ${response.status} (started without --api?)`);
  await response.body?.cancel();
}
