import type { Logger } from '../../logger.js';
import type { ImageRepository } from '../../ports/image-repository.js';
import type { MediaStore } from '../../ports/media-store.js';

/**
 * Deletes a session's drafts (pictures of a page repaint not yet the page's): their records, then
 * their files. Whoever ends a session calls it: its run after a failure or a cancel, and the cancel
 * itself, which may find no run holding the session (queued again after a restart) or one in
 * another process. Once a session has ended no draft can be saved for it
 * (ImageRepository.saveImageOnce), so nothing is left behind; calling it twice is harmless.
 * Never throws: a record or file that cannot be removed is logged.
 */
export async function discardDrafts(images: ImageRepository, media: MediaStore, sessionId: string, logger: Logger): Promise<void> {
  try {
    await removeMediaFiles(media, await images.discardDraftImages(sessionId), logger);
  } catch (error) {
    logger.warn({ err: error, sessionId }, 'could not discard the drafts of a page repaint');
  }
}

/** Removes the files of these media keys; one that cannot be removed is logged and left. Never throws. */
export async function removeMediaFiles(media: MediaStore, keys: readonly string[], logger: Logger): Promise<void> {
  await Promise.all(keys.map((key) => media.remove(key).catch((error: unknown) => logger.warn({ err: error, key }, 'could not remove a media file'))));
}
