import type { Viewer } from '../services/auth/viewer.js';
import type { CharacterDistance, CharacterSide, Story, StoryPage } from '../entities/index.js';
import type { KeysetPage, ListPosition } from './keyset.js';

/** A planned book as first saved: no page has text yet. */
export interface NewBook {
  id: string;
  title: string;
  prompt: string;
  style: string | null;
  /** The character sheet: the character's look as an image prompt. */
  characterDescription: string;
  pages: NewPage[];
}

interface NewPage {
  outline: string;
  sceneDescription: string;
  characterSide: CharacterSide;
  characterDistance: CharacterDistance;
}

/** What replacePagePictures did. */
export enum PictureSwap {
  /** The session's drafts are the page's pictures (now, or already before this call). */
  REPLACED = 'replaced',
  /** The session had ended: nothing was changed. */
  SESSION_ENDED = 'session-ended',
  /** The story was deleted: nothing was changed. */
  STORY_GONE = 'story-gone',
}

/** replacePagePictures' answer; mediaKeys: the old pictures' files, for the caller to remove (removing one twice is harmless). */
export type PictureSwapResult = { outcome: PictureSwap.REPLACED; mediaKeys: string[] } | { outcome: PictureSwap.SESSION_ENDED | PictureSwap.STORY_GONE };

/** Reads and writes of stories and their pages. */
export interface BookRepository {
  /**
   * Saves the session's planned book (the story row and one row per page, pages
   * 0..n-1 without text) unless the session already has a story; returns the
   * story that counts, so two racing runs of one session share one book.
   */
  saveBookOnce(book: NewBook, sessionId: string): Promise<Story>;
  /** The story's pages in reading order. */
  findPages(storyId: string): Promise<StoryPage[]>;
  /** Pages of all the stories given, in reading order within each story. */
  findPagesByStoryIds(storyIds: readonly string[]): Promise<StoryPage[]>;
  /**
   * Saves a page's text unless it already has some (a racing run wrote it first);
   * the story's storyText becomes the written pages' text joined by blank lines.
   * Returns the page that counts. Throws when the page does not exist.
   */
  savePageTextOnce(storyId: string, index: number, text: string): Promise<StoryPage>;
  /** Fills in a description that is still empty (a story from before books); page 0's is also the story's backgroundDescription. */
  fillCharacterDescription(storyId: string, description: string): Promise<void>;
  fillSceneDescription(storyId: string, index: number, description: string): Promise<void>;
  /**
   * Replaces a written page's text (the caller has checked it); the story's storyText follows.
   * Returns the page, or null when the story has no such page.
   */
  replacePageText(storyId: string, index: number, text: string): Promise<StoryPage | null>;
  /**
   * In one transaction, while the session still runs: the page's scene and composite in use are deleted,
   * the session's drafts become the page's pictures, when given the page's scene description is replaced
   * (page 0's is also the story's backgroundDescription), and the old pictures' media keys are recorded in
   * the session's options (replacedMediaKeys). Returns those keys for the caller to remove. Nothing is
   * changed when the session has ended (a cancel got there first) or the story has gone; a session that
   * has swapped already gets its recorded keys back, so a second call never swaps twice.
   */
  replacePagePictures(storyId: string, index: number, sessionId: string, sceneDescription: string | null): Promise<PictureSwapResult>;
  findStory(id: string): Promise<Story | null>;
  requireStory(id: string): Promise<Story>;
  /** Those of the stories the viewer may see; another owner's are left out as if missing. */
  findStoriesByIds(ids: readonly string[], viewer: Viewer): Promise<Story[]>;
  /** The viewer's stories, newest first; only stories with text (a planned book whose first page is not written yet is left out). */
  listStories(limit: number, offset: number, viewer: Viewer): Promise<Story[]>;
  /** The same list read by keyset: up to `limit` stories after `after` (null: from the newest). */
  listStoriesAfter(after: ListPosition | null, limit: number, viewer: Viewer): Promise<KeysetPage<Story>>;
  /** Deletes the story with its pages and images; returns the media keys of the images for the caller to remove. */
  deleteStory(id: string): Promise<{ deleted: boolean; mediaKeys: string[] }>;
}

/** A story's text as the first contract defines it: the written pages' text joined by blank lines. */
export function joinPageTexts(pages: readonly Pick<StoryPage, 'index' | 'text'>[]): string {
  return [...pages]
    .sort((a, b) => a.index - b.index)
    .map((page) => page.text)
    .filter((text) => text !== '')
    .join('\n\n');
}
