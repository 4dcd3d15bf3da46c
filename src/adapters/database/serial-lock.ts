/**
 * Runs tasks one after another. PGlite is a single shared session, so two
 * overlapping multi-statement writes would interleave; embedded mode funnels
 * every write through one of these.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
