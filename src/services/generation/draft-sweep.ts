import type { Logger } from '../../logger.js';
import type { DraftFile, ImageRepository } from '../../ports/image-repository.js';
import type { MediaStore } from '../../ports/media-store.js';

/** Drafts read, removed and deleted per round of a sweep, so a large backlog is never held in memory at once. */
const DRAFT_SWEEP_BATCH = 200;

/** What one sweep removed. */
export interface DraftSweepResult {
  /** Draft records deleted. */
  rows: number;
  /** Bytes of the files of those records that were still on disk. */
  bytes: number;
}

/**
 * Removes the drafts (pictures of a page repaint never swapped into the page) that nobody else will:
 * those of sessions that ended without their drafts being discarded (discardDrafts): a process
 * killed between ending a session (a failure, a cancel, a run over MAX_RUNS_PER_SESSION) and
 * discarding, a discard whose database write failed, or drafts older than that cleanup. A draft of a
 * PENDING or running session, one resumed after a restart included, is never touched
 * (ImageRepository.findEndedDrafts).
 *
 * Each draft's file goes first, then its record: a sweep cut short (a crash, a file that cannot be
 * removed) leaves records whose file may be gone, and the next sweep finds them again, removes the
 * already missing file (no error) and deletes them. Records first would leave files that no record
 * names and no sweep ever finds. No page uses a draft, so a record without its file harms nothing
 * meanwhile. Two processes sweeping at once remove nothing twice that matters: a missing file is no
 * error and each record is deleted by one of them.
 */
export class DraftSweep {
  constructor(
    private readonly images: Pick<ImageRepository, 'findEndedDrafts' | 'deleteEndedDrafts'>,
    private readonly media: Pick<MediaStore, 'remove'>,
    private readonly logger: Logger,
    private readonly batchSize: number = DRAFT_SWEEP_BATCH,
  ) {}

  /**
   * Removes every draft of an ended session, files then records, and logs one line with the rows and
   * bytes removed (info when there were any, debug otherwise). A file that cannot be removed is logged
   * and its record kept for the next sweep. Throws when the database cannot be read or written, and
   * `signal`'s reason when it is aborted (checked before each batch, so a batch's files and records go together).
   */
  async sweep(signal?: AbortSignal): Promise<DraftSweepResult> {
    const total: DraftSweepResult = { rows: 0, bytes: 0 };
    let after: string | null = null;
    for (;;) {
      signal?.throwIfAborted();
      const batch = await this.images.findEndedDrafts(after, this.batchSize);
      if (batch.length === 0) break;
      after = batch[batch.length - 1].id;
      const removed = await this.removeFiles(batch);
      const deleted = new Set(await this.images.deleteEndedDrafts([...removed.keys()]));
      for (const [id, bytes] of removed) {
        if (!deleted.has(id)) continue;
        total.rows += 1;
        total.bytes += bytes;
      }
      if (batch.length < this.batchSize) break;
    }
    const level = total.rows > 0 ? 'info' : 'debug';
    this.logger[level](total, `swept ${total.rows} draft pictures of ended page repaints (${total.bytes} bytes)`);
    return total;
  }

  /** The drafts whose file is gone now, each with the bytes its file held (0 when it was gone already). */
  private async removeFiles(drafts: readonly DraftFile[]): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    for (const draft of drafts) {
      try {
        removed.set(draft.id, await this.media.remove(draft.filePath));
      } catch (error) {
        this.logger.warn({ err: error, key: draft.filePath }, 'could not remove the file of a draft picture; its record is kept for the next sweep');
      }
    }
    return removed;
  }
}
