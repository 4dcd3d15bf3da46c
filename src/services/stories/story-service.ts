import DataLoader from 'dataloader';
import { GenerationStatus, ImageType, RUNNING_STATUSES, type GeneratedImage, type Story } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { Viewer } from '../auth/viewer.js';
import type { StoryRepository } from '../database/story-repository.js';
import { InvalidInputError } from '../errors.js';
import { requireUuid } from '../generation/input.js';
import type { MediaStore } from '../media/media-store.js';

export const MAX_PAGE_SIZE = 100;

/** Per-request batching of the lookups a GraphQL query fans out into, so a page of stories costs a fixed number of queries. */
export interface StoryLoaders {
  imagesByStory: DataLoader<string, GeneratedImage[]>;
  storyById: DataLoader<string, Story | null>;
}

export class StoryService {
  constructor(
    private readonly repository: StoryRepository,
    private readonly media: MediaStore,
    private readonly logger: Logger,
  ) {}

  /** Loaders that see only what the viewer may: another owner's story loads as null. */
  createLoaders(viewer: Viewer): StoryLoaders {
    return {
      imagesByStory: new DataLoader(async (storyIds) => {
        const images = await this.repository.findImagesByStoryIds(storyIds);
        return storyIds.map((id) => images.filter((image) => image.storyId === id).sort(byImageType));
      }),
      storyById: new DataLoader(async (ids) => {
        const stories = await this.repository.findStoriesByIds(ids, viewer);
        return ids.map((id) => stories.find((story) => story.id === id) ?? null);
      }),
    };
  }

  async get(id: string, loaders: StoryLoaders): Promise<Story | null> {
    return loaders.storyById.load(requireUuid(id, 'story id'));
  }

  async list(limit: number, offset: number, viewer: Viewer): Promise<Story[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new InvalidInputError(`limit must be between 1 and ${MAX_PAGE_SIZE}.`);
    }
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidInputError('offset must be 0 or more.');
    return this.repository.listStories(limit, offset, viewer);
  }

  async delete(id: string, viewer: Viewer): Promise<boolean> {
    const storyId = requireUuid(id, 'story id');
    const [story] = await this.repository.findStoriesByIds([storyId], viewer);
    if (!story) throw new InvalidInputError(`No story has the id ${id}`);
    const running = await this.repository.findSessionsOfStory(storyId);
    if (running.some((session) => RUNNING_STATUSES.includes(session.status as GenerationStatus))) {
      throw new InvalidInputError(`Story ${id} is still being illustrated: cancel its generation first.`);
    }
    const { deleted, mediaKeys } = await this.repository.deleteStory(storyId);
    await Promise.all(
      mediaKeys.map((key) => this.media.remove(key).catch((error: unknown) => this.logger.warn({ err: error, key }, 'could not remove a media file'))),
    );
    return deleted;
  }

  imageUrl(image: GeneratedImage): string {
    return this.media.urlFor(image.filePath);
  }
}

const TYPE_ORDER = [ImageType.CHARACTER, ImageType.BACKGROUND, ImageType.COMBINED];

function byImageType(a: GeneratedImage, b: GeneratedImage): number {
  return TYPE_ORDER.indexOf(a.imageType) - TYPE_ORDER.indexOf(b.imageType);
}
