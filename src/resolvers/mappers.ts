import { GenerationKind, pageOfSession, type GeneratedImage, type GenerationSession, type Story, type StoryPage } from '../entities/index.js';
import type { ProgressUpdateForClient } from '../services/generation/generation-service.js';
import type { GeneratedImageView, GenerationProgressView, GenerationSessionView, StoryPageView, StoryView } from '../schema/types.js';

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
  const { id, status, progressPercentage, stage, errorMessage, warnings, prompt, storyId, createdAt, updatedAt } = session;
  return {
    id,
    status,
    progressPercentage,
    stage,
    errorMessage,
    warnings,
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

export function toProgressView(update: ProgressUpdateForClient): GenerationProgressView {
  const { sessionId, status, progressPercentage, stage, storyTextDelta, storyTextReset, errorMessage, warnings, storyId, pageIndex } = update;
  return { sessionId, status, progressPercentage, stage, storyTextDelta, storyTextReset, errorMessage, warnings, storyId, pageIndex };
}
