import type { Logger } from '../../logger.js';
import type { ImageRepository } from '../../ports/image-repository.js';
import type { MediaStore, StoredFile } from '../../ports/media-store.js';

/**
 * How old a file must be (since it was last written) before the sweep may remove it when no record names it: 1 hour.
 * A picture is saved to the MediaStore first and its record inserted right after (GenerationPipeline), so for a
 * moment every new picture is a file no record names; one younger than this is never removed, however the sweep and
 * that insert interleave. The same holds for a write still under way (its temporary file). An hour is far beyond
 * the longest save-then-insert gap (a slow database retried, say), and an orphan costing disk for an hour more
 * harms nothing.
 */
export const ORPHAN_FILE_GRACE_MS = 60 * 60 * 1000;

/** Files old enough to remove that are looked up in the database per query, so no query holds every file. */
const ORPHAN_SWEEP_BATCH = 500;

/**
 * A sweep removes nothing when more of the old files are named by no record than by one. Orphans are the odd
 * crash's leftovers, a few among many pictures in use; most of MEDIA_DIR unnamed means MEDIA_DIR belongs to another
 * database (DATABASE_URL pointed at a new PostgreSQL, the embedded database reset or not mounted, media restored
 * without its database), whose pictures a sweep must never take.
 */
const MOST_FILES_UNNAMED = 0.5;

/** What one sweep removed. */
export interface OrphanFileSweepResult {
  /** Files removed. */
  files: number;
  /** Bytes those files held. */
  bytes: number;
}

export interface OrphanFileSweepOptions {
  /** Files younger than this (ms) are never removed; ORPHAN_FILE_GRACE_MS unless a test says otherwise. */
  graceMs?: number;
  /** Keys per database look-up. */
  batchSize?: number;
  /** The time now, in ms since the epoch. */
  now?: () => number;
}

/**
 * Removes the MediaStore's files that no image record names, older than a grace period (ORPHAN_FILE_GRACE_MS):
 * a picture saved by a process killed before its record was inserted, a write's temporary file left by a crash
 * mid-write, or the file of a record deleted (a story deleted, drafts discarded) whose removal failed. Image
 * records are the only ones that name a file in use (character pictures, scenes and composites of pages, and
 * drafts of page repaints); book downloads are rendered in memory and never stored. A session's
 * `replacedMediaKeys` names files on their way out, whose records are already gone: such a file is removed here as
 * by the session, and the session finds it gone, which is no error.
 *
 * A key enters a record only right after the file is saved, never later, so a file older than the grace period
 * that no record names now never will be.
 */
export class OrphanFileSweep {
  private readonly graceMs: number;
  private readonly batchSize: number;
  private readonly now: () => number;

  constructor(
    private readonly images: Pick<ImageRepository, 'findNamedMediaKeys'>,
    private readonly media: Pick<MediaStore, 'list' | 'remove'>,
    private readonly logger: Logger,
    options: OrphanFileSweepOptions = {},
  ) {
    this.graceMs = options.graceMs ?? ORPHAN_FILE_GRACE_MS;
    this.batchSize = options.batchSize ?? ORPHAN_SWEEP_BATCH;
    this.now = options.now ?? Date.now;
  }

  /**
   * Lists the store once and looks up the files older than the grace period a batch at a time; then, unless most of
   * those files are named by no record (MOST_FILES_UNNAMED: MEDIA_DIR of another database; logged as a warning,
   * nothing removed), removes the unnamed ones, and logs one line with the files and bytes removed (info when there
   * were any, debug otherwise). A file that cannot be removed is logged and left for the next sweep. Memory: the
   * unnamed files' keys. Throws when the store cannot be listed or the database read, and `signal`'s reason when
   * it is aborted (checked before each look-up and each removal).
   */
  async sweep(signal?: AbortSignal): Promise<OrphanFileSweepResult> {
    const newest = this.now() - this.graceMs;
    const unnamed: StoredFile[] = [];
    let old = 0;
    let batch: StoredFile[] = [];
    const lookUp = async () => {
      signal?.throwIfAborted();
      const named = new Set(await this.images.findNamedMediaKeys(batch.map((file) => file.key)));
      unnamed.push(...batch.filter((file) => !named.has(file.key)));
      old += batch.length;
      batch = [];
    };
    for await (const file of this.media.list()) {
      if (file.modifiedAt.getTime() > newest) continue;
      batch.push(file);
      if (batch.length >= this.batchSize) await lookUp();
    }
    if (batch.length > 0) await lookUp();
    if (unnamed.length > old * MOST_FILES_UNNAMED) {
      this.logger.warn(
        { unnamed: unnamed.length, old },
        `${unnamed.length} of the ${old} picture files older than an hour in MEDIA_DIR are named by no record of this database: ` +
          'is MEDIA_DIR from another database (DATABASE_URL changed, the embedded database reset or not mounted)? Nothing was removed; ' +
          'point MEDIA_DIR and the database at the same installation, or remove the files by hand if they are not wanted',
      );
      return { files: 0, bytes: 0 };
    }
    const total = await this.remove(unnamed, signal);
    const level = total.files > 0 ? 'info' : 'debug';
    this.logger[level](total, `swept ${total.files} picture files no record names (${total.bytes} bytes)`);
    return total;
  }

  private async remove(files: readonly StoredFile[], signal: AbortSignal | undefined): Promise<OrphanFileSweepResult> {
    const total: OrphanFileSweepResult = { files: 0, bytes: 0 };
    for (const file of files) {
      signal?.throwIfAborted();
      try {
        total.bytes += await this.media.remove(file.key);
        total.files += 1;
      } catch (error) {
        this.logger.warn({ err: error, key: file.key }, 'could not remove a picture file no record names; the next sweep tries again');
      }
    }
    return total;
  }
}
