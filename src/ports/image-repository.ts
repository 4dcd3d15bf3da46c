import type { GeneratedImage, ImageType } from '../entities/index.js';

export interface NewImage {
  storyId: string;
  imageType: ImageType;
  /** Null for the character picture, the page's index for its scene and composite. */
  pageIndex: number | null;
  filePath: string;
  width: number;
  height: number;
  promptUsed: string;
  seed: number | null;
  /** Set on a draft: a picture of a page repaint session that is not the page's until replacePagePictures. */
  pendingSessionId?: string | null;
}

/** A draft the sweep removes: its record's id and its file's media key. */
export interface DraftFile {
  id: string;
  filePath: string;
}

/** Reads and writes of generated pictures' records (the files live in the MediaStore). */
export interface ImageRepository {
  /**
   * Saves one image per story, type and page (a draft: one per session and type): a second save returns the first one's row.
   * A draft is saved only while its session runs, checked atomically with the insert; null (nothing saved) once the session
   * has ended, so whoever ends a session and then discards its drafts leaves none behind. Throws when the story is gone.
   */
  saveImageOnce(image: NewImage & { id: string }): Promise<GeneratedImage | null>;
  /** The pictures in use (no drafts). */
  findImagesByStoryIds(storyIds: readonly string[]): Promise<GeneratedImage[]>;
  /** The drafts a page repaint session has saved so far. */
  findDraftImages(sessionId: string): Promise<GeneratedImage[]>;
  /** Deletes the session's drafts; returns their media keys for the caller to remove. */
  discardDraftImages(sessionId: string): Promise<string[]>;
  /**
   * Drafts left by page repaints that ended without discarding them (a process killed mid-run whose session was
   * then ended elsewhere, or drafts older than that cleanup): those whose session is COMPLETED, FAILED or
   * CANCELLED, or whose session row is gone. Never a draft of a PENDING or running session; an ended session
   * never runs again, so such a draft can never become a page's picture. Up to `limit` of them with an id
   * after `after` (null: from the first), in id order.
   */
  findEndedDrafts(after: string | null, limit: number): Promise<DraftFile[]>;
  /** Deletes those of these records that are still drafts of an ended (or gone) session; returns the ids deleted. */
  deleteEndedDrafts(ids: readonly string[]): Promise<string[]>;
  /**
   * Those of these media keys that an image record names, drafts included (every record that names a file of the
   * MediaStore is an image record); in no particular order. One query per call, so callers pass a batch (a few hundred
   * keys), never every file at once.
   */
  findNamedMediaKeys(keys: readonly string[]): Promise<string[]>;
}
