import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { GenerationStatus } from '../entities/index.js';
import { GenerationProgressView, GenerationSessionConnectionView, GenerationSessionView, StartGenerationInput, StoryView } from '../schema/types.js';
import type { GenerationService, ProgressUpdateForClient } from '../services/generation/generation-service.js';
import type { RequestContext } from './context.js';
import { toGraphQLError } from './errors.js';
import { forgetStories } from './loaders.js';
import { toConnectionView, toProgressView, toSessionView, toStoryView } from './mappers.js';

@Resolver(() => GenerationSessionView)
export class GenerationResolver {
  constructor(private readonly generations: GenerationService) {}

  @Query(() => GenerationSessionView, { nullable: true })
  async generationSession(@Arg('id', () => ID) id: string, @Ctx() { viewer }: RequestContext): Promise<GenerationSessionView | null> {
    const session = await this.generations.get(id, viewer);
    return session && toSessionView(session);
  }

  @Query(() => GenerationSessionConnectionView, {
    description:
      "The viewer's generation sessions, newest first, read page by page with a cursor; with status, only those (e.g. [PENDING, GENERATING_STORY, GENERATING_IMAGES]: the running ones, to find a book whose tab was closed). An after that is not a cursor of this list is BAD_USER_INPUT.",
  })
  async generationSessions(
    @Arg('status', () => [GenerationStatus], { nullable: true, description: 'Only sessions in one of these statuses; null or left out: any.' })
    status: GenerationStatus[] | null,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20, description: '1 to 100.' }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: 'The endCursor (or an edge cursor) of the page before; null for the newest.' })
    after: string | null,
    @Ctx() { viewer }: RequestContext,
  ): Promise<GenerationSessionConnectionView> {
    return toConnectionView(await this.generations.list(status ?? null, first ?? 20, after ?? null, viewer), toSessionView);
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
  generationProgress(
    @Root() update: ProgressUpdateForClient,
    @Arg('sessionId', () => ID) _sessionId: string,
    @Ctx() { loaders }: RequestContext,
  ): GenerationProgressView {
    forgetStories(loaders);
    return toProgressView(update);
  }
}

@Resolver(() => GenerationProgressView)
export class GenerationProgressResolver {
  @FieldResolver(() => GenerationSessionView, {
    description:
      'The session this event is about, as it stands after the event: a normalized cache (Apollo Client, urql Graphcache) updates its GenerationSession object from it. Select its id and the fields to keep current (status, progressPercentage, stage, stageCode, warnings, warningDetails).',
  })
  async session(@Root() progress: GenerationProgressView, @Ctx() { loaders }: RequestContext): Promise<GenerationSessionView> {
    // The row is read once per subscription (the loader caches it); what changes comes from the event.
    const saved = await loaders.sessionById.load(progress.sessionId);
    if (!saved) throw new Error(`Generation session ${progress.sessionId} is gone`);
    const { status, progressPercentage, stage, stageCode, errorMessage, warnings, warningDetails, storyId } = progress;
    return { ...toSessionView(saved), status, progressPercentage, stage, stageCode, errorMessage, warnings, warningDetails, storyId: storyId ?? saved.storyId };
  }
}
