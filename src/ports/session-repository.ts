import type { GenerationOptions, GenerationSession, GenerationStatus } from '../entities/index.js';
import type { KeysetPage, ListPosition } from './keyset.js';
import type { Viewer } from '../services/auth/viewer.js';
import type { Stage } from '../services/progress/progress-plan.js';

export type SessionPatch = Partial<
  Pick<GenerationSession, 'status' | 'progressPercentage' | 'stage' | 'stageCode' | 'errorMessage' | 'warnings' | 'warningDetails' | 'storyId' | 'options'>
>;

/** createSession refused: a running session already does the same work (a repaint of the same page). */
export class DuplicateWorkError extends Error {
  override name = 'DuplicateWorkError';
}

export interface NewSession {
  id: string;
  prompt: string;
  options: GenerationOptions;
  stage: Stage;
  ownerId: string | null;
  storyId?: string | null;
}

/** Reads and writes of generation sessions. */
export interface SessionRepository {
  /**
   * ownerId: who started it; null with AUTH_MODE=none. storyId: the story it works on, when that exists
   * already (a page repaint). Throws DuplicateWorkError when a running session repaints the same page.
   */
  createSession(fields: NewSession): Promise<GenerationSession>;
  findSession(id: string): Promise<GenerationSession | null>;
  /** The session if the viewer may see it; another owner's reads as missing. */
  findSessionFor(id: string, viewer: Viewer): Promise<GenerationSession | null>;
  /** Sessions not yet ended that belong to this owner (null: those with none). */
  countRunningSessionsOf(ownerId: string | null): Promise<number>;
  /** Throws when the session does not exist. */
  requireSession(id: string): Promise<GenerationSession>;
  findSessionsOfStory(storyId: string): Promise<GenerationSession[]>;
  findRunningSessions(): Promise<GenerationSession[]>;
  /** The viewer's sessions, newest first, by keyset: up to `limit` after `after` (null: from the newest); `statuses` null for any status. */
  listSessionsAfter(
    after: ListPosition | null,
    limit: number,
    viewer: Viewer,
    statuses: readonly GenerationStatus[] | null,
  ): Promise<KeysetPage<GenerationSession>>;
  /** Applies the patch only while the session is still running; false when it had already ended. */
  updateRunningSession(id: string, patch: SessionPatch): Promise<boolean>;
  /**
   * Applies a cancel's patch (status CANCELLED) while the session is still running and its work is not
   * already in place: a page repaint whose new pictures have replaced the old ones (options.replacedMediaKeys)
   * is past cancelling and only has to finish. False when nothing was changed. Atomic with
   * BookRepository.replacePagePictures: one of the two wins.
   */
  cancelRunningSession(id: string, patch: SessionPatch): Promise<boolean>;
  /** Heartbeat: marks a running session as alive now. */
  touchSession(id: string): Promise<void>;
  /** Running sessions whose heartbeat is older than silentForMs (milliseconds). */
  findAbandonedSessions(silentForMs: number): Promise<GenerationSession[]>;
  /** Counts one more run of the session; null when it may not run again (ended, or out of runs). */
  beginAttempt(id: string): Promise<GenerationSession | null>;
}
