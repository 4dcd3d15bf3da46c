import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { GenerationProgressView, GenerationSessionView, StartGenerationInput, StoryView } from '../schema/types.js';
import type { GenerationService, ProgressUpdateForClient } from '../services/generation/generation-service.js';
import type { RequestContext } from './context.js';
import { toGraphQLError } from './errors.js';
import { toProgressView, toSessionView, toStoryView } from './mappers.js';

@Resolver(() => GenerationSessionView)
export class GenerationResolver {
  constructor(private readonly generations: GenerationService) {}

  @Query(() => GenerationSessionView, { nullable: true })
  async generationSession(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<GenerationSessionView | null> {
    const session = await this.generations.get(id, viewer);
    return session && toSessionView(session);
  }

  @Mutation(() => GenerationSessionView, { description: 'Returns at once with a PENDING (or later) session; the work runs in the background.' })
  async startGeneration(
    @Arg('input', () => StartGenerationInput) input: StartGenerationInput,
    @Ctx() { viewer }: RequestContext,
  ): Promise<GenerationSessionView> {
    return toSessionView(await this.generations.start(input, viewer));
  }

  @Mutation(() => GenerationSessionView, {
    description:
      "Paints one page again: its scene (a new random seed unless one is given)\nand its composite, with the book's same character. With redescribe: true\nthe scene description is first written again from the page's current text.\nReturns at once with the session doing it; follow it with\ngenerationProgress. Every other page and picture is kept.",
  })
  async regeneratePageImage(
    @Arg('storyId', () => ID) storyId: string,
    @Arg('pageIndex', () => Int) pageIndex: number,
    @Arg('seed', () => Int, { nullable: true }) seed: number | null,
    @Arg('redescribe', () => Boolean, { nullable: true }) redescribe: boolean | null,
    @Ctx() { viewer }: RequestContext,
  ): Promise<GenerationSessionView> {
    return toSessionView(await this.generations.repaintPage({ storyId, pageIndex, seed, redescribe }, viewer));
  }

  @Mutation(() => GenerationSessionView)
  async cancelGeneration(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<GenerationSessionView> {
    return toSessionView(await this.generations.cancel(id, viewer));
  }

  @FieldResolver(() => StoryView, {
    nullable: true,
    description: 'Set as soon as the story text is saved (before images are done); for a book of several pages, as soon as it is planned.',
  })
  async story(@Root() session: GenerationSessionView, @Ctx() { loaders }: RequestContext): Promise<StoryView | null> {
    if (!session.storyId) return null;
    const story = await loaders.storyById.load(session.storyId);
    // A one-page story planned but not yet written is not a story to show; a book shows its plan.
    return story && (story.storyText !== '' || session.pageCount > 1) ? toStoryView(story) : null;
  }

  @Subscription(() => GenerationProgressView, {
    // `subscribe` runs without a resolver instance, so the service comes through the context.
    subscribe: async ({ args, context }) => {
      try {
        const { generations, viewer } = context as RequestContext;
        return await generations.follow(args.sessionId as string, viewer);
      } catch (error) {
        throw toGraphQLError(error);
      }
    },
  })
  generationProgress(@Root() update: ProgressUpdateForClient, @Arg('sessionId', () => ID) _sessionId: string): GenerationProgressView {
    return toProgressView(update);
  }
}
