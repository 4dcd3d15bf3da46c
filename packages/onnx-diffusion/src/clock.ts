/** Milliseconds since the epoch with sub-ms precision: one clock for the main thread and the worker. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
