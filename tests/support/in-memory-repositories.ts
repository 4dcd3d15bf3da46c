import { canSee, type Viewer } from '../../src/services/auth/viewer.js';
import { randomUUID } from 'node:crypto';
import {
  GenerationKind,
  GenerationStatus,
  ImageType,
  RUNNING_STATUSES,
  pageOfSession,
  type GeneratedImage,
  type GenerationSession,
  type Story,
  type StoryPage,
} from '../../src/entities/index.js';
import { joinPageTexts, PictureSwap, type NewBook, type PictureSwapResult } from '../../src/ports/book-repository.js';
import type { NewImage, SessionPatch, StoryRepository } from '../../src/ports/story-repository.js';
import type { DraftFile } from '../../src/ports/image-repository.js';
import { DuplicateWorkError, type NewSession } from '../../src/ports/session-repository.js';
import type { KeysetPage, ListPosition } from '../../src/ports/keyset.js';

/**
 * Every persistence port in memory, with the same "once" rules as the
 * database adapter (one book per session, one text per page, one picture per
 * story, type and page), for unit tests of the services. Rows are copied in
 * and out, so callers cannot change what is stored by holding an object.
 */
export class InMemoryRepositories implements StoryRepository {
  readonly sessions = new Map<string, GenerationSession>();
  readonly stories = new Map<string, Story>();
  readonly pages: StoryPage[] = [];
  readonly images: GeneratedImage[] = [];
  /** Every call by method name, for tests that count writes. */
  readonly calls: string[] = [];

  async createSession(fields: NewSession): Promise<GenerationSession> {
    this.calls.push('createSession');
    // As the database's partial unique index does: one running repaint per page.
    const page = pageOfSession(fields.options);
    const duplicate = [...this.sessions.values()].some(
      (session) => page !== null && session.storyId === fields.storyId && pageOfSession(session.options) === page && RUNNING_STATUSES.includes(session.status),
    );
    if (duplicate) throw new DuplicateWorkError('That page is already being painted again');
    const now = new Date();
    this.sessions.set(fields.id, {
      ...fields,
      stage: fields.stage.label,
      stageCode: fields.stage.code,
      warningDetails: [],
      status: GenerationStatus.PENDING,
      progressPercentage: 0,
      errorMessage: null,
      warnings: [],
      attempts: 0,
      storyId: fields.storyId ?? null,
      createdAt: now,
      updatedAt: now,
    });
    return this.requireSession(fields.id);
  }

  async findSession(id: string): Promise<GenerationSession | null> {
    const session = this.sessions.get(id);
    return session ? structuredClone(session) : null;
  }

  async findSessionFor(id: string, viewer: Viewer): Promise<GenerationSession | null> {
    const session = await this.findSession(id);
    return session && canSee(viewer, session.ownerId) ? session : null;
  }

  async countRunningSessionsOf(ownerId: string | null): Promise<number> {
    return [...this.sessions.values()].filter((session) => RUNNING_STATUSES.includes(session.status) && session.ownerId === ownerId).length;
  }

  async requireSession(id: string): Promise<GenerationSession> {
    const session = await this.findSession(id);
    if (!session) throw new Error(`Generation session ${id} does not exist`);
    return session;
  }

  async findSessionsOfStory(storyId: string): Promise<GenerationSession[]> {
    return [...this.sessions.values()].filter((session) => session.storyId === storyId).map((session) => structuredClone(session));
  }

  async findRunningSessions(): Promise<GenerationSession[]> {
    return [...this.sessions.values()].filter((session) => RUNNING_STATUSES.includes(session.status)).map((session) => structuredClone(session));
  }

  async updateRunningSession(id: string, patch: SessionPatch): Promise<boolean> {
    this.calls.push('updateRunningSession');
    const session = this.sessions.get(id);
    if (!session || !RUNNING_STATUSES.includes(session.status)) return false;
    Object.assign(session, structuredClone(patch), { updatedAt: new Date() });
    return true;
  }

  async cancelRunningSession(id: string, patch: SessionPatch): Promise<boolean> {
    this.calls.push('cancelRunningSession');
    const session = this.sessions.get(id);
    if (session?.options.kind === GenerationKind.PAGE_REPAINT && session.options.replacedMediaKeys) return false;
    return this.updateRunningSession(id, patch);
  }

  async touchSession(id: string): Promise<void> {
    const session = this.sessions.get(id);
    if (session && RUNNING_STATUSES.includes(session.status)) session.updatedAt = new Date();
  }

  async findAbandonedSessions(silentForMs: number): Promise<GenerationSession[]> {
    const before = Date.now() - silentForMs;
    return (await this.findRunningSessions()).filter((session) => session.updatedAt.getTime() < before);
  }

  async beginAttempt(id: string): Promise<GenerationSession | null> {
    const session = this.sessions.get(id);
    if (!session || !RUNNING_STATUSES.includes(session.status)) return null;
    session.attempts += 1;
    return structuredClone(session);
  }

  async saveBookOnce(book: NewBook, sessionId: string): Promise<Story> {
    this.calls.push('saveBookOnce');
    const session = this.sessions.get(sessionId);
    if (!session) throw new Error(`Generation session ${sessionId} does not exist`);
    if (session.storyId) return this.requireStory(session.storyId);
    const { pages, ...story } = book;
    this.stories.set(story.id, {
      ...story,
      storyText: '',
      backgroundDescription: pages[0]?.sceneDescription ?? '',
      createdAt: new Date(),
      ownerId: this.sessions.get(sessionId)?.ownerId ?? null,
    });
    for (const [index, page] of pages.entries()) {
      this.pages.push({ ...page, id: randomUUID(), storyId: story.id, index, text: '', createdAt: new Date() });
    }
    session.storyId = story.id;
    return this.requireStory(story.id);
  }

  async findPages(storyId: string): Promise<StoryPage[]> {
    return this.findPagesByStoryIds([storyId]);
  }

  async findPagesByStoryIds(storyIds: readonly string[]): Promise<StoryPage[]> {
    return this.pages
      .filter((page) => storyIds.includes(page.storyId))
      .sort((a, b) => a.storyId.localeCompare(b.storyId) || a.index - b.index)
      .map((page) => structuredClone(page));
  }

  async savePageTextOnce(storyId: string, index: number, text: string): Promise<StoryPage> {
    this.calls.push(`savePageTextOnce:${index}`);
    const page = this.pages.find((candidate) => candidate.storyId === storyId && candidate.index === index);
    if (!page) throw new Error(`Story ${storyId} has no page ${index}`);
    if (page.text === '') page.text = text;
    this.stories.get(storyId)!.storyText = joinPageTexts(this.pages.filter((candidate) => candidate.storyId === storyId));
    return structuredClone(page);
  }

  async replacePageText(storyId: string, index: number, text: string): Promise<StoryPage | null> {
    this.calls.push(`replacePageText:${index}`);
    const page = this.pages.find((candidate) => candidate.storyId === storyId && candidate.index === index);
    if (!page) return null;
    page.text = text;
    this.stories.get(storyId)!.storyText = joinPageTexts(this.pages.filter((candidate) => candidate.storyId === storyId));
    return structuredClone(page);
  }

  async replacePagePictures(storyId: string, index: number, sessionId: string, sceneDescription: string | null): Promise<PictureSwapResult> {
    this.calls.push(`replacePagePictures:${index}`);
    const session = this.sessions.get(sessionId);
    if (!session || !RUNNING_STATUSES.includes(session.status)) return { outcome: PictureSwap.SESSION_ENDED };
    const { options } = session;
    if (options.kind !== GenerationKind.PAGE_REPAINT) throw new Error(`Session ${sessionId} paints no page again`);
    if (options.replacedMediaKeys) return { outcome: PictureSwap.REPLACED, mediaKeys: [...options.replacedMediaKeys] };
    const story = this.stories.get(storyId);
    if (!story) return { outcome: PictureSwap.STORY_GONE };
    const old = this.images.filter(
      (image) => image.storyId === storyId && image.pageIndex === index && image.imageType !== ImageType.CHARACTER && image.pendingSessionId === null,
    );
    this.images.splice(0, this.images.length, ...this.images.filter((image) => !old.includes(image)));
    for (const image of this.images) if (image.pendingSessionId === sessionId) image.pendingSessionId = null;
    if (sceneDescription !== null) {
      const page = this.pages.find((candidate) => candidate.storyId === storyId && candidate.index === index);
      if (page) page.sceneDescription = sceneDescription;
      if (index === 0) story.backgroundDescription = sceneDescription;
    }
    const mediaKeys = old.map((image) => image.filePath);
    session.options = { ...options, replacedMediaKeys: mediaKeys };
    return { outcome: PictureSwap.REPLACED, mediaKeys: [...mediaKeys] };
  }

  async fillCharacterDescription(storyId: string, description: string): Promise<void> {
    const story = this.stories.get(storyId);
    if (story && story.characterDescription === '') story.characterDescription = description;
  }

  async fillSceneDescription(storyId: string, index: number, description: string): Promise<void> {
    const page = this.pages.find((candidate) => candidate.storyId === storyId && candidate.index === index);
    if (page && page.sceneDescription === '') page.sceneDescription = description;
    const story = this.stories.get(storyId);
    if (index === 0 && story && story.backgroundDescription === '') story.backgroundDescription = description;
  }

  async findStory(id: string): Promise<Story | null> {
    const story = this.stories.get(id);
    return story ? structuredClone(story) : null;
  }

  async requireStory(id: string): Promise<Story> {
    const story = await this.findStory(id);
    if (!story) throw new Error(`Story ${id} does not exist`);
    return story;
  }

  async findStoriesByIds(ids: readonly string[], viewer: Viewer): Promise<Story[]> {
    return ids.flatMap((id) => {
      const story = this.stories.get(id);
      return story && canSee(viewer, story.ownerId) ? [structuredClone(story)] : [];
    });
  }

  async listStories(limit: number, offset: number, viewer: Viewer): Promise<Story[]> {
    return [...this.stories.values()]
      .filter((story) => story.storyText !== '' && canSee(viewer, story.ownerId))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id.localeCompare(a.id))
      .slice(offset, offset + limit)
      .map((story) => structuredClone(story));
  }

  async listStoriesAfter(after: ListPosition | null, limit: number, viewer: Viewer): Promise<KeysetPage<Story>> {
    return keysetPage(
      [...this.stories.values()].filter((story) => story.storyText !== '' && canSee(viewer, story.ownerId)),
      after,
      limit,
    );
  }

  async listSessionsAfter(
    after: ListPosition | null,
    limit: number,
    viewer: Viewer,
    statuses: readonly GenerationStatus[] | null,
  ): Promise<KeysetPage<GenerationSession>> {
    return keysetPage(
      [...this.sessions.values()].filter((session) => canSee(viewer, session.ownerId) && (!statuses || statuses.includes(session.status))),
      after,
      limit,
    );
  }

  async deleteStory(id: string): Promise<{ deleted: boolean; mediaKeys: string[] }> {
    const mediaKeys = this.images.filter((image) => image.storyId === id).map((image) => image.filePath);
    const deleted = this.stories.delete(id);
    this.images.splice(0, this.images.length, ...this.images.filter((image) => image.storyId !== id));
    this.pages.splice(0, this.pages.length, ...this.pages.filter((page) => page.storyId !== id));
    // As the database's ON DELETE SET NULL does.
    for (const session of this.sessions.values()) if (session.storyId === id) session.storyId = null;
    return { deleted, mediaKeys };
  }

  async saveImageOnce(image: NewImage & { id: string }): Promise<GeneratedImage | null> {
    this.calls.push(`saveImageOnce:${image.imageType}:${image.pageIndex}`);
    // As the database's foreign key does: no picture row for a story that is gone.
    if (!this.stories.has(image.storyId)) throw new Error(`insert on generated_images violates foreign key: story ${image.storyId} does not exist`);
    const pendingSessionId = image.pendingSessionId ?? null;
    // As the database's insert guarded by the session row does: no draft once its session has ended.
    if (pendingSessionId !== null && !RUNNING_STATUSES.includes(this.sessions.get(pendingSessionId)?.status ?? GenerationStatus.CANCELLED)) return null;
    const same = (candidate: GeneratedImage) =>
      candidate.storyId === image.storyId &&
      candidate.imageType === image.imageType &&
      candidate.pageIndex === image.pageIndex &&
      candidate.pendingSessionId === pendingSessionId;
    if (!this.images.some(same)) this.images.push({ ...image, pendingSessionId, createdAt: new Date() });
    return structuredClone(this.images.find(same)!);
  }

  async findImagesByStoryIds(storyIds: readonly string[]): Promise<GeneratedImage[]> {
    return this.images.filter((image) => storyIds.includes(image.storyId) && image.pendingSessionId === null).map((image) => structuredClone(image));
  }

  async findDraftImages(sessionId: string): Promise<GeneratedImage[]> {
    return this.images.filter((image) => image.pendingSessionId === sessionId).map((image) => structuredClone(image));
  }

  async discardDraftImages(sessionId: string): Promise<string[]> {
    const drafts = this.images.filter((image) => image.pendingSessionId === sessionId);
    this.images.splice(0, this.images.length, ...this.images.filter((image) => !drafts.includes(image)));
    return drafts.map((image) => image.filePath);
  }

  async findEndedDrafts(after: string | null, limit: number): Promise<DraftFile[]> {
    return (
      this.images
        .filter((image) => this.isEndedDraft(image) && (after === null || image.id > after))
        // Byte order, as PostgreSQL orders uuids.
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .slice(0, limit)
        .map(({ id, filePath }) => ({ id, filePath }))
    );
  }

  async deleteEndedDrafts(ids: readonly string[]): Promise<string[]> {
    const deleted = this.images.filter((image) => ids.includes(image.id) && this.isEndedDraft(image));
    this.images.splice(0, this.images.length, ...this.images.filter((image) => !deleted.includes(image)));
    return deleted.map((image) => image.id);
  }

  /** As the database's check: a draft whose session has ended, or whose session row is gone. */
  async findNamedMediaKeys(keys: readonly string[]): Promise<string[]> {
    this.calls.push('findNamedMediaKeys');
    const named = new Set(this.images.map((image) => image.filePath));
    return [...new Set(keys)].filter((key) => named.has(key));
  }

  private isEndedDraft(image: GeneratedImage): boolean {
    if (image.pendingSessionId === null) return false;
    const session = this.sessions.get(image.pendingSessionId);
    return !session || !RUNNING_STATUSES.includes(session.status);
  }
}

/** The database adapter's keyset page over rows in memory (positions in its format: UTC, microseconds). */
function keysetPage<T extends { id: string; createdAt: Date }>(rows: T[], after: ListPosition | null, limit: number): KeysetPage<T> {
  const positioned = rows
    .map((row) => ({ node: structuredClone(row), position: { createdAt: row.createdAt.toISOString().replace('Z', '000Z'), id: row.id } }))
    .sort((a, b) => b.position.createdAt.localeCompare(a.position.createdAt) || b.position.id.localeCompare(a.position.id));
  const rest = after
    ? positioned.filter(({ position }) => position.createdAt < after.createdAt || (position.createdAt === after.createdAt && position.id < after.id))
    : positioned;
  return { items: rest.slice(0, limit), hasMore: rest.length > limit, totalCount: rows.length };
}
