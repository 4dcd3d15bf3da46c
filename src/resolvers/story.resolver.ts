import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ImageType, type GeneratedImage } from '../entities/index.js';
import { GeneratedImageView, RemoveStoryPayloadView, StoryConnectionView, StoryPageView, StoryView } from '../schema/types.js';
import { requireUuid } from '../services/generation/input.js';
import { ExportFormat } from '../services/export/export-book.js';
import type { ExportLinks } from '../services/export/export-links.js';
import type { StoryService } from '../services/stories/story-service.js';
import type { RequestContext } from './context.js';
import { toConnectionView, toImageView, toPageView, toStoryView } from './mappers.js';

@Resolver(() => StoryView)
export class StoryResolver {
  constructor(
    private readonly storyService: StoryService,
    private readonly exportLinks: ExportLinks,
  ) {}

  @Query(() => StoryView, { nullable: true })
  async story(@Arg('id', () => ID) id: string, @Ctx() { loaders }: RequestContext): Promise<StoryView | null> {
    const story = await loaders.storyById.load(requireUuid(id, 'story id'));
    return story && toStoryView(story);
  }

  @Query(() => [StoryView], { description: 'Newest first.' })
  async stories(
    // Nullable with defaults, as in the contract: an explicit null means the default.
    @Arg('limit', () => Int, { nullable: true, defaultValue: 20 }) limit: number | null,
    @Arg('offset', () => Int, { nullable: true, defaultValue: 0 }) offset: number | null,
    @Ctx() { viewer }: RequestContext,
  ): Promise<StoryView[]> {
    return (await this.storyService.list(limit ?? 20, offset ?? 0, viewer)).map(toStoryView);
  }

  @Query(() => StoryConnectionView, {
    description:
      'Newest first, read page by page with a cursor (a Relay connection): stories saved between two page loads never repeat or shift an item. An after that is not a cursor of this list is BAD_USER_INPUT.',
  })
  async storyConnection(
    @Arg('first', () => Int, { nullable: true, defaultValue: 20, description: '1 to 100.' }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: 'The endCursor (or an edge cursor) of the page before; null for the newest.' })
    after: string | null,
    @Ctx() { viewer }: RequestContext,
  ): Promise<StoryConnectionView> {
    return toConnectionView(await this.storyService.page(first ?? 20, after ?? null, viewer), toStoryView);
  }

  @Mutation(() => Boolean)
  deleteStory(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<boolean> {
    return this.storyService.delete(id, viewer);
  }

  @Mutation(() => StoryPageView, { description: "Replaces one page's text (1 to 4000 characters after trimming); storyText follows." })
  async updatePageText(
    @Arg('storyId', () => ID) storyId: string,
    @Arg('pageIndex', () => Int) pageIndex: number,
    @Arg('text', () => String) text: string,
    @Ctx() { viewer }: RequestContext,
  ): Promise<StoryPageView> {
    return toPageView(await this.storyService.updatePageText(storyId, pageIndex, text, viewer));
  }

  @Mutation(() => RemoveStoryPayloadView, {
    description:
      "Deletes a story as deleteStory does, and answers with the removed story's id, so a client can evict it from a normalized cache. Unknown ids and running stories are BAD_USER_INPUT, as for deleteStory.",
  })
  async removeStory(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<RemoveStoryPayloadView> {
    await this.storyService.delete(id, viewer);
    return { deletedStoryId: requireUuid(id, 'story id') };
  }

  @FieldResolver(() => [GeneratedImageView])
  async images(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView[]> {
    return (await context.loaders.imagesByStory.load(story.id)).map((image) => imageView(this.storyService, image, context));
  }

  @FieldResolver(() => [StoryPageView], {
    description:
      "The pages in reading order; a one-page story has one. storyText is their\ntext joined by blank lines; backgroundDescription, backgroundImage and\ncombinedImage are page 0's; characterImage is the one character picture\nthat every page uses.",
  })
  async pages(@Root() story: StoryView, @Ctx() { loaders }: RequestContext): Promise<StoryPageView[]> {
    return (await loaders.pagesByStory.load(story.id)).map(toPageView);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  characterImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return imageOf(this.storyService, story.id, ImageType.CHARACTER, null, context);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  backgroundImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return imageOf(this.storyService, story.id, ImageType.BACKGROUND, 0, context);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  combinedImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return imageOf(this.storyService, story.id, ImageType.COMBINED, 0, context);
  }

  @FieldResolver(() => String, {
    description: 'Where to download the book as one file: GET returns text/html, application/epub+zip or application/pdf.',
  })
  exportUrl(@Root() story: StoryView, @Arg('format', () => ExportFormat) format: ExportFormat, @Ctx() { urls }: RequestContext): string {
    return urls.resolve(this.exportLinks.urlFor(story.id, format));
  }
}

@Resolver(() => StoryPageView)
export class StoryPageResolver {
  constructor(private readonly storyService: StoryService) {}

  @FieldResolver(() => GeneratedImageView, { nullable: true, description: "This page's scene without the character." })
  backgroundImage(@Root() page: StoryPageView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return imageOf(this.storyService, page.storyId, ImageType.BACKGROUND, page.index, context);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true, description: "The main character in this page's scene." })
  combinedImage(@Root() page: StoryPageView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return imageOf(this.storyService, page.storyId, ImageType.COMBINED, page.index, context);
  }
}

/** A story's picture of one type for one page (null: the character's), through the request's loader. */
async function imageOf(
  stories: StoryService,
  storyId: string,
  type: ImageType,
  pageIndex: number | null,
  context: RequestContext,
): Promise<GeneratedImageView | null> {
  const image = (await context.loaders.imagesByStory.load(storyId)).find((candidate) => candidate.imageType === type && candidate.pageIndex === pageIndex);
  return image ? imageView(stories, image, context) : null;
}

/** An image with its URL as this request's clients use it (absolute unless PUBLIC_URLS=relative). */
function imageView(stories: StoryService, image: GeneratedImage, { urls }: RequestContext): GeneratedImageView {
  return toImageView(image, urls.resolve(stories.imageUrl(image)));
}
