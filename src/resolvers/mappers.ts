import { GenerationKind, pageOfSession, type GeneratedImage, type GenerationSession, type Story, type StoryPage } from '../entities/index.js';
import type { ProgressUpdateForClient } from '../services/generation/generation-service.js';
import type { GeneratedImageView, GenerationProgressView, GenerationSessionView, PageInfoView, StoryPageView, StoryView } from '../schema/types.js';
import type { Connection } from '../services/pagination/cursor.js';

export function toStoryView(story: Story): StoryView {
  const { id, title, prompt, storyText, characterDescription, backgroundDescription, createdAt, style } = story;
  return { id, title, prompt, storyText, characterDescription, backgroundDescription, createdAt, style };
}

export function toPageView(page: StoryPage): StoryPageView {
  const { id, index, text, sceneDescription, outline, storyId } = page;
  return { id, index, text, sceneDescription, outline, storyId };
}

export function toImageView(image: GeneratedImage, url: string): GeneratedImageView {
  const { id, imageType, width, height, promptUsed, seed, createdAt, pageIndex } = image;
  return { id, imageType, url, width, height, promptUsed, seed, createdAt, pageIndex };
}

export function toSessionView(session: GenerationSession): GenerationSessionView {
  const { id, status, progressPercentage, stage, stageCode, errorMessage, warnings, warningDetails, prompt, storyId, createdAt, updatedAt } = session;
  return {
    id,
    status,
    progressPercentage,
    stage,
    stageCode,
    errorMessage,
    warnings,
    warningDetails,
    prompt,
    storyId,
    createdAt,
    updatedAt,
    style: session.options.style,
    seed: session.options.seed,
    pageCount: session.options.kind === GenerationKind.BOOK ? (session.options.pageCount ?? 1) : 1,
    kind: session.options.kind,
    pageIndex: pageOfSession(session.options),
  };
}

/** A progress update as GraphQL shows it: the same fields (its `session` is resolved from `sessionId`). */
export function toProgressView(update: ProgressUpdateForClient): GenerationProgressView {
  return { ...update };
}

/** A service's page as a Relay connection: edges with cursors, pageInfo (forwards only) and totalCount. */
export function toConnectionView<T, V>(
  connection: Connection<T>,
  toView: (node: T) => V,
): { edges: { cursor: string; node: V }[]; pageInfo: PageInfoView; totalCount: number } {
  const edges = connection.edges.map(({ cursor, node }) => ({ cursor, node: toView(node) }));
  return {
    edges,
    pageInfo: { hasNextPage: connection.hasNextPage, hasPreviousPage: false, startCursor: edges[0]?.cursor ?? null, endCursor: connection.endCursor },
    totalCount: connection.totalCount,
  };
}
