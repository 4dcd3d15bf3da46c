import {
  GenerationKind,
  type GenerationSession,
  type GenerationStatus,
  ImageType,
  RUNNING_STATUSES,
  isTerminal,
  type GeneratedImage,
  type Story,
  type StoryPage,
} from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { Viewer } from '../auth/viewer.js';
import type { StoryRepository } from '../../ports/story-repository.js';
import { ConflictError, InvalidInputError } from '../errors.js';
import { normalizePageText, requirePageIndex, requireUuid } from '../generation/input.js';
import { decodeCursor, requirePageSize, toConnection, type Connection } from '../pagination/cursor.js';
import type { MediaStore } from '../../ports/media-store.js';

const MAX_PAGE_SIZE = 100;

export class StoryService {
  constructor(
    private readonly repository: StoryRepository,
    private readonly media: MediaStore,
    private readonly logger: Logger,
  ) {}

  /** Stories by id, in the order asked; null where none has that id or the viewer may not see it. One query for all of them. */
  async getMany(ids: readonly string[], viewer: Viewer): Promise<(Story | null)[]> {
    const stories = await this.repository.findStoriesByIds(ids, viewer);
    return ids.map((id) => stories.find((story) => story.id === id) ?? null);
  }

  /** Each story's images (the character, then page by page its background and combined), in the order of the ids asked. One query for all of them. */
  async imagesOfStories(storyIds: readonly string[]): Promise<GeneratedImage[][]> {
    const images = await this.repository.findImagesByStoryIds(storyIds);
    return storyIds.map((id) => images.filter((image) => image.storyId === id).sort(byPageThenType));
  }

  /** Each story's pages in reading order, in the order of the ids asked. One query for all of them. */
  async pagesOfStories(storyIds: readonly string[]): Promise<StoryPage[][]> {
    const pages = await this.repository.findPagesByStoryIds(storyIds);
    return storyIds.map((id) => pages.filter((page) => page.storyId === id).sort((a, b) => a.index - b.index));
  }

  async list(limit: number, offset: number, viewer: Viewer): Promise<Story[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new InvalidInputError(`limit must be between 1 and ${MAX_PAGE_SIZE}.`);
    }
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidInputError('offset must be 0 or more.');
    return this.repository.listStories(limit, offset, viewer);
  }

  /**
   * The viewer's stories with text, newest first, `first` (1..100) after the
   * cursor `after` (null: from the newest). Stories saved meanwhile never
   * shift a later page. Throws InvalidInputError for a bad `first` or cursor.
   */
  async page(first: number, after: string | null, viewer: Viewer): Promise<Connection<Story>> {
    const size = requirePageSize(first);
    const position = after === null ? null : decodeCursor('story', after);
    return toConnection('story', await this.repository.listStoriesAfter(position, size, viewer));
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

  /**
   * Replaces one page's text (trimmed; 1 to 4000 characters) and returns the page; the story's
   * storyText becomes the pages' text joined again. Throws InvalidInputError for bad text, a story
   * the viewer cannot see or a page index outside the book, ConflictError while the book is still
   * being written; nothing is changed then. The page's pictures are left as they are.
   */
  async updatePageText(storyId: string, pageIndex: number, text: string, viewer: Viewer): Promise<StoryPage> {
    const id = requireUuid(storyId, 'story id');
    const newText = normalizePageText(text);
    const [story] = await this.repository.findStoriesByIds([id], viewer);
    if (!story) throw new InvalidInputError(`No story has the id ${storyId}`);
    const pages = await this.repository.findPages(id);
    requirePageIndex(pageIndex, pages.length);
    refuseWhileBookIsMade(await this.repository.findSessionsOfStory(id), id);
    const page = await this.repository.replacePageText(id, pageIndex, newText);
    if (!page) throw new InvalidInputError(`No story has the id ${storyId}`);
    this.logger.info({ storyId: id, pageIndex }, 'page text replaced');
    return page;
  }

  /** The server path of an image (`/media/…`, signed with AUTH_MODE=api-key); the GraphQL layer makes it absolute. */
  imageUrl(image: GeneratedImage): string {
    return this.media.urlFor(image.filePath);
  }
}

/** A book whose own generation still runs is not edited: its text and pictures are still being saved. Throws ConflictError. */
export function refuseWhileBookIsMade(sessions: readonly GenerationSession[], storyId: string): void {
  const making = sessions.find((session) => session.options.kind === GenerationKind.BOOK && !isTerminal(session.status));
  if (making)
    throw new ConflictError(`Story ${storyId} is still being written and illustrated (session ${making.id}); wait for it to finish or cancel it first.`);
}

const TYPE_ORDER = [ImageType.CHARACTER, ImageType.BACKGROUND, ImageType.COMBINED];

function byPageThenType(a: GeneratedImage, b: GeneratedImage): number {
  return (a.pageIndex ?? -1) - (b.pageIndex ?? -1) || TYPE_ORDER.indexOf(a.imageType) - TYPE_ORDER.indexOf(b.imageType);
}
