import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ImageType, type GeneratedImage } from '../entities/index.js';
import { GeneratedImageView, StoryView } from '../schema/types.js';
import { requireUuid } from '../services/generation/input.js';
import type { StoryService } from '../services/stories/story-service.js';
import type { RequestContext } from './context.js';
import { toImageView, toStoryView } from './mappers.js';

@Resolver(() => StoryView)
export class StoryResolver {
  constructor(private readonly storyService: StoryService) {}

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

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  characterImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return this.imageOfType(story, ImageType.CHARACTER, context);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  backgroundImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return this.imageOfType(story, ImageType.BACKGROUND, context);
  }

  @FieldResolver(() => GeneratedImageView, { nullable: true })
  combinedImage(@Root() story: StoryView, @Ctx() context: RequestContext): Promise<GeneratedImageView | null> {
    return this.imageOfType(story, ImageType.COMBINED, context);
  }

  private async imageOfType(story: StoryView, type: ImageType, { loaders }: RequestContext): Promise<GeneratedImageView | null> {
    const image = (await loaders.imagesByStory.load(story.id)).find((candidate) => candidate.imageType === type);
    return image ? this.view(image) : null;
  }

  private view(image: GeneratedImage): GeneratedImageView {
    return toImageView(image, this.storyService.imageUrl(image));
  }
}
