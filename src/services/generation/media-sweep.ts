import type { Logger } from '../../logger.js';
import type { ProcessLock } from '../../ports/process-lock.js';

/** One kind of leftover a sweep removes (DraftSweep, OrphanFileSweep). */
interface Sweeper {
  /** Sweeps; stops between steps, throwing `signal`'s reason, once it is aborted. */
  sweep(signal?: AbortSignal): Promise<unknown>;
}

/** How a round of the media sweep went. */
export enum MediaSweepOutcome {
  /** This process swept. */
  SWEPT = 'SWEPT',
  /** Another process was sweeping, so this one skipped the round. */
  SKIPPED = 'SKIPPED',
}

/**
 * One round of a worker's media sweep: the drafts of ended page repaints first (their files go, then their records),
 * then the files no record names, all while holding the ProcessLock, so that of several workers sharing one database
 * only one sweeps at a time (the others skip the round rather than wait: the next round comes soon enough, and two
 * sweeps at once would do the work twice and count the same bytes twice).
 */
export class MediaSweep {
  constructor(
    private readonly lock: ProcessLock,
    private readonly sweepers: readonly Sweeper[],
    private readonly logger: Logger,
  ) {}

  /**
   * Runs every sweeper in order under the lock, or none when another process holds it. Throws what a sweeper throws,
   * and `signal`'s reason once it is aborted (the process is stopping: the round ends between two steps).
   */
  async sweep(signal?: AbortSignal): Promise<MediaSweepOutcome> {
    const ran = await this.lock.runAlone(async () => {
      for (const sweeper of this.sweepers) await sweeper.sweep(signal);
    });
    if (ran) return MediaSweepOutcome.SWEPT;
    this.logger.debug('another process is sweeping media: skipped this round');
    return MediaSweepOutcome.SKIPPED;
  }
}
