import type { BookRepository } from './book-repository.js';
import type { ImageRepository } from './image-repository.js';
import type { SessionRepository } from './session-repository.js';

export type { SessionPatch } from './session-repository.js';
export type { NewImage } from './image-repository.js';

/** All persistence together, for the few callers that need every kind; the database adapter implements it. */
export interface StoryRepository extends SessionRepository, BookRepository, ImageRepository {}
