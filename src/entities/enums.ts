export enum GenerationStatus {
  PENDING = 'PENDING',
  GENERATING_STORY = 'GENERATING_STORY',
  GENERATING_IMAGES = 'GENERATING_IMAGES',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

export const RUNNING_STATUSES: readonly GenerationStatus[] = [GenerationStatus.PENDING, GenerationStatus.GENERATING_STORY, GenerationStatus.GENERATING_IMAGES];

export function isTerminal(status: GenerationStatus): boolean {
  return !RUNNING_STATUSES.includes(status);
}

/** What a generation session does; kept in the session's options, so a resumed run knows which steps to take. */
export enum GenerationKind {
  /** Plan, write and illustrate a new book (every session made before page editing). */
  BOOK = 'book',
  /** Paint one page of a saved book again: its scene, then its composite with the book's character. */
  PAGE_REPAINT = 'page-repaint',
}

export enum ImageType {
  CHARACTER = 'CHARACTER',
  BACKGROUND = 'BACKGROUND',
  COMBINED = 'COMBINED',
}

/** Where the character stands across a page's picture, as the planning agent chose. */
export enum CharacterSide {
  LEFT = 'left',
  CENTRE = 'centre',
  RIGHT = 'right',
}

/** How near the character stands: near is large in the foreground, far is smaller and further back. */
export enum CharacterDistance {
  NEAR = 'near',
  FAR = 'far',
}
