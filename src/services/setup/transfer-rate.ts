/**
 * Speed and time left of a transfer, from the bytes seen over the last
 * `windowMs` (a sliding window: (bytes now − bytes at the window's start) /
 * elapsed seconds), so a stall or a burst shows within seconds and the
 * estimate does not carry the start of a long download forever.
 */
export class TransferRate {
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  /** Records `bytes` done (a running total) at `at` milliseconds. */
  add(at: number, bytes: number): void {
    this.samples.push({ at, bytes });
    // Keep one sample at or before the window's start, so the window is always covered.
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) this.samples.shift();
  }

  /** Bytes a second over the window; null until two samples are at least 100 ms apart. */
  bytesPerSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 100) return null;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }

  /** Seconds until `total` at the current speed; null when the speed or the total is unknown, or the speed is 0. */
  secondsLeft(done: number, total: number | null): number | null {
    const speed = this.bytesPerSecond();
    if (total === null || speed === null || speed <= 0) return null;
    return Math.max(0, (total - done) / speed);
  }
}
