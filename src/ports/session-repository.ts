import type { GenerationOptions, GenerationSession } from '../entities/index.js';

export type SessionPatch = Partial<
  Pick<GenerationSession, 'status' | 'progressPercentage' | 'stage' | 'errorMessage' | 'warnings' | 'storyId'>
>;

/** Reads and writes of generation sessions. */
export interface SessionRepository {
  createSession(fields: { id: string; prompt: string; options: GenerationOptions; stage: string }): Promise<GenerationSession>;
  findSession(id: string): Promise<GenerationSession | null>;
  /** Throws when the session does not exist. */
  requireSession(id: string): Promise<GenerationSession>;
  findSessionsOfStory(storyId: string): Promise<GenerationSession[]>;
  findRunningSessions(): Promise<GenerationSession[]>;
  /** Applies the patch only while the session is still running; false when it had already ended. */
  updateRunningSession(id: string, patch: SessionPatch): Promise<boolean>;
  /** Heartbeat: marks a running session as alive now. */
  touchSession(id: string): Promise<void>;
  /** Running sessions whose heartbeat is older than silentForMs (milliseconds). */
  findAbandonedSessions(silentForMs: number): Promise<GenerationSession[]>;
  /** Counts one more run of the session; null when it may not run again (ended, or out of runs). */
  beginAttempt(id: string): Promise<GenerationSession | null>;
}
