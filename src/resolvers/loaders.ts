import DataLoader from 'dataloader';
import type { GeneratedImage, GenerationSession, Story, StoryPage } from '../entities/index.js';
import type { GenerationService } from '../services/generation/generation-service.js';
import type { Viewer } from '../services/auth/viewer.js';
import type { StoryService } from '../services/stories/story-service.js';

/** Per-request batching of the lookups a GraphQL query fans out into, so a page of stories costs a fixed number of queries. */
export interface StoryLoaders {
  /** Each story's images, in the service's display order. */
  imagesByStory: DataLoader<string, GeneratedImage[]>;
  storyById: DataLoader<string, Story | null>;
  /** Each story's pages, in reading order. */
  pagesByStory: DataLoader<string, StoryPage[]>;
  /** Sessions as saved; in a subscription, loaded once for all its events. */
  sessionById: DataLoader<string, GenerationSession | null>;
}

/** Built once per GraphQL operation: the caches never outlive a request; stories the viewer may not see load as null. */
export function createStoryLoaders(stories: StoryService, generations: GenerationService, viewer: Viewer): StoryLoaders {
  return {
    imagesByStory: new DataLoader((storyIds) => stories.imagesOfStories(storyIds)),
    storyById: new DataLoader((ids) => stories.getMany(ids, viewer)),
    pagesByStory: new DataLoader((storyIds) => stories.pagesOfStories(storyIds)),
    sessionById: new DataLoader((ids) => Promise.all(ids.map((id) => generations.get(id, viewer)))),
  };
}

/**
 * Forgets the stories, pages and images loaded so far, keeping the sessions.
 * A subscription has one context for all its events, so each event starts
 * with this: a story's pictures painted since the last event are read afresh.
 */
export function forgetStories(loaders: StoryLoaders): void {
  loaders.storyById.clearAll();
  loaders.imagesByStory.clearAll();
  loaders.pagesByStory.clearAll();
}
