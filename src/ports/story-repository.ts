import type { Viewer } from '../services/auth/viewer.js';
import type { GeneratedImage, GenerationOptions, GenerationSession, ImageType, Story } from '../entities/index.js';

export type SessionPatch = Partial<Pick<GenerationSession, 'status' | 'progressPercentage' | 'stage' | 'errorMessage' | 'warnings' | 'storyId'>>;

export interface NewImage {
  storyId: string;
  imageType: ImageType;
  filePath: string;
  width: number;
  height: number;
  promptUsed: string;
  seed: number | null;
}

/** Every read and write of stories, images and sessions; the database adapter implements it. */
export interface StoryRepository {
  /** ownerId: who started it; null with AUTH_MODE=none. */
  createSession(fields: { id: string; prompt: string; options: GenerationOptions; stage: string; ownerId: string | null }): Promise<GenerationSession>;
  findSession(id: string): Promise<GenerationSession | null>;
  /** The session if the viewer may see it; another owner's reads as missing. */
  findSessionFor(id: string, viewer: Viewer): Promise<GenerationSession | null>;
  /** Sessions not yet ended that belong to this owner (null: those with none). */
  countRunningSessionsOf(ownerId: string | null): Promise<number>;
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
  /** Saves the session's story once: a second run of the same session gets the first one's row back. */
  saveStoryOnce(story: Pick<Story, 'id' | 'title' | 'prompt' | 'storyText'>, sessionId: string): Promise<Story>;
  updateStoryDescriptions(id: string, descriptions: Partial<Pick<Story, 'characterDescription' | 'backgroundDescription'>>): Promise<void>;
  findStory(id: string): Promise<Story | null>;
  requireStory(id: string): Promise<Story>;
  /** Those of the stories the viewer may see; another owner's are left out as if missing. */
  findStoriesByIds(ids: readonly string[], viewer: Viewer): Promise<Story[]>;
  /** The viewer's stories, newest first. */
  listStories(limit: number, offset: number, viewer: Viewer): Promise<Story[]>;
  /** Deletes the story with its images; returns the media keys of the images for the caller to remove. */
  deleteStory(id: string): Promise<{ deleted: boolean; mediaKeys: string[] }>;
  /** Saves one image per story and type: a second save returns the first one's row. */
  saveImageOnce(image: NewImage & { id: string }): Promise<GeneratedImage>;
  findImagesByStoryIds(storyIds: readonly string[]): Promise<GeneratedImage[]>;
}
