import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ImageType, type GeneratedImage } from '../entities/index.js';
import { GeneratedImageView, StoryPageView, StoryView } from '../schema/types.js';
import { requireUuid } from '../services/generation/input.js';
import { ExportFormat } from '../services/export/export-book.js';
import type { ExportLinks } from '../services/export/export-links.js';
import type { StoryService } from '../services/stories/story-service.js';
import type { RequestContext } from './context.js';
import { toImageView, toPageView, toStoryView } from './mappers.js';

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

  @Mutation(() => Boolean)
  deleteStory(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<boolean> {
    return this.storyService.delete(id, viewer);
  }

  @FieldResolver(() => [GeneratedImageView])
  async images(@Root() story: StoryView, @Ctx() { loaders }: RequestContext): Promise<GeneratedImageView[]> {
    return (await loaders.imagesByStory.load(story.id)).map((image) => this.view(image));
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
  exportUrl(@Root() story: StoryView, @Arg('format', () => ExportFormat) format: ExportFormat): string {
    return this.exportLinks.urlFor(story.id, format);
  }

  private view(image: GeneratedImage): GeneratedImageView {
    return toImageView(image, this.storyService.imageUrl(image));
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
  { loaders }: RequestContext,
): Promise<GeneratedImageView | null> {
  const image = (await loaders.imagesByStory.load(storyId)).find((candidate) => candidate.imageType === type && candidate.pageIndex === pageIndex);
  return image ? toImageView(image, stories.imageUrl(image)) : null;
}
