import { randomUUID } from 'node:crypto';
import { In, IsNull, Not, QueryFailedError, type DataSource, type EntityManager, type ObjectLiteral, type SelectQueryBuilder } from 'typeorm';
import { GeneratedImage, GenerationKind, GenerationSession, GenerationStatus, ImageType, RUNNING_STATUSES, Story, StoryPage } from '../../entities/index.js';
import { joinPageTexts, PictureSwap, type NewBook, type PictureSwapResult } from '../../ports/book-repository.js';
import type { KeysetPage, ListPosition } from '../../ports/keyset.js';
import type { NewImage, SessionPatch, StoryRepository } from '../../ports/story-repository.js';
import type { DraftFile } from '../../ports/image-repository.js';
import { DuplicateWorkError, type NewSession } from '../../ports/session-repository.js';
import { SINGLE_USER, type Viewer } from '../../services/auth/viewer.js';
import { SerialLock } from './serial-lock.js';

/** Rolls back a story insert that lost the race to another run of the same session. */
class StoryAlreadySaved extends Error {}

/** The database adapter: every read and write of sessions, stories with their pages, and images goes through here. */
export class TypeOrmStoryRepository implements StoryRepository {
  private readonly writes: SerialLock | null;

  constructor(
    private readonly dataSource: DataSource,
    options: { serializeWrites: boolean },
  ) {
    this.writes = options.serializeWrites ? new SerialLock() : null;
  }

  private write<T>(task: (manager: EntityManager) => Promise<T>): Promise<T> {
    const run = () => task(this.dataSource.manager);
    return this.writes ? this.writes.run(run) : run();
  }

  private transaction<T>(task: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.write(() => this.dataSource.transaction(task));
  }

  // --- sessions ---------------------------------------------------------------------------

  async createSession(fields: NewSession): Promise<GenerationSession> {
    try {
      await this.write((manager) =>
        manager.insert(GenerationSession, {
          id: fields.id,
          prompt: fields.prompt,
          options: fields.options,
          status: GenerationStatus.PENDING,
          progressPercentage: 0,
          stage: fields.stage.label,
          stageCode: fields.stage.code,
          warnings: [],
          warningDetails: [],
          ownerId: fields.ownerId,
          storyId: fields.storyId ?? null,
        }),
      );
    } catch (error) {
      if (violates(error, 'UQ_generation_sessions_running_page_repaint'))
        throw new DuplicateWorkError('That page is already being painted again', { cause: error });
      throw error;
    }
    return this.requireSession(fields.id);
  }

  findSession(id: string): Promise<GenerationSession | null> {
    return this.dataSource.manager.findOneBy(GenerationSession, { id });
  }

  /** The session if the viewer may see it; another owner's reads as missing. */
  findSessionFor(id: string, viewer: Viewer): Promise<GenerationSession | null> {
    return this.dataSource.manager.findOneBy(GenerationSession, { id, ...ownerCondition(viewer) });
  }

  /** Sessions not yet ended that belong to this owner (null: those with none). */
  countRunningSessionsOf(ownerId: string | null): Promise<number> {
    return this.dataSource.manager
      .createQueryBuilder(GenerationSession, 'session')
      .where('session.status IN (:...running)', { running: RUNNING_STATUSES })
      .andWhere(ownerId === null ? 'session.owner_id IS NULL' : 'session.owner_id = :ownerId', { ownerId })
      .getCount();
  }

  async requireSession(id: string): Promise<GenerationSession> {
    const session = await this.findSession(id);
    if (!session) throw new Error(`Generation session ${id} does not exist`);
    return session;
  }

  findSessionsOfStory(storyId: string): Promise<GenerationSession[]> {
    return this.dataSource.manager.findBy(GenerationSession, { storyId });
  }

  findRunningSessions(): Promise<GenerationSession[]> {
    return this.dataSource.manager.find(GenerationSession, {
      where: { status: In([...RUNNING_STATUSES]) },
      order: { createdAt: 'ASC' },
    });
  }

  /** The viewer's sessions (of these statuses), newest first, after a position. */
  listSessionsAfter(
    after: ListPosition | null,
    limit: number,
    viewer: Viewer,
    statuses: readonly GenerationStatus[] | null,
  ): Promise<KeysetPage<GenerationSession>> {
    const query = ownedBy(this.dataSource.manager.createQueryBuilder(GenerationSession, 'session'), 'session', viewer);
    if (statuses) query.andWhere('session.status IN (:...statuses)', { statuses: statuses.length > 0 ? [...statuses] : [null] });
    return keysetPage(query, 'session', after, limit);
  }

  /** Updates a session only while it is still running, so a cancel can never be overwritten. Returns whether it was. */
  async updateRunningSession(id: string, patch: SessionPatch): Promise<boolean> {
    const result = await this.write((manager) =>
      manager
        .createQueryBuilder()
        .update(GenerationSession)
        .set(patch)
        .where('id = :id AND status IN (:...running)', { id, running: RUNNING_STATUSES })
        .execute(),
    );
    return (result.affected ?? 0) > 0;
  }

  /** As updateRunningSession, unless the swap of a page repaint has written its replacedMediaKeys (it waits for the swap's lock). */
  async cancelRunningSession(id: string, patch: SessionPatch): Promise<boolean> {
    const result = await this.write((manager) =>
      manager
        .createQueryBuilder()
        .update(GenerationSession)
        .set(patch)
        .where(`id = :id AND status IN (:...running) AND options -> 'replacedMediaKeys' IS NULL`, { id, running: RUNNING_STATUSES })
        .execute(),
    );
    return (result.affected ?? 0) > 0;
  }

  /** Marks a running session as alive; see findAbandonedSessions. */
  async touchSession(id: string): Promise<void> {
    await this.write((manager) =>
      manager
        .createQueryBuilder()
        .update(GenerationSession)
        .set({ updatedAt: () => 'now()' })
        .where('id = :id AND status IN (:...running)', { id, running: RUNNING_STATUSES })
        .execute(),
    );
  }

  /** Running sessions nobody has touched for `silentForMs`: their runner is gone. */
  findAbandonedSessions(silentForMs: number): Promise<GenerationSession[]> {
    return this.dataSource.manager
      .createQueryBuilder(GenerationSession, 'session')
      .where('session.status IN (:...running)', { running: RUNNING_STATUSES })
      .andWhere(`session.updated_at < now() - make_interval(secs => :seconds)`, { seconds: silentForMs / 1000 })
      .orderBy('session.created_at', 'ASC')
      .getMany();
  }

  /** Counts a new run of the session and returns it, or null when it has already ended. */
  async beginAttempt(id: string): Promise<GenerationSession | null> {
    const updated = await this.write((manager) =>
      manager
        .createQueryBuilder()
        .update(GenerationSession)
        .set({ attempts: () => 'attempts + 1' })
        .where('id = :id AND status IN (:...running)', { id, running: RUNNING_STATUSES })
        .execute(),
    );
    return (updated.affected ?? 0) > 0 ? this.findSession(id) : null;
  }

  // --- stories ----------------------------------------------------------------------------

  /**
   * Saves the session's planned book unless it already has one, and returns the
   * story that counts. Two runs of one session racing here (a worker taken for
   * dead that was not) still leave exactly one book.
   */
  async saveBookOnce(book: NewBook, sessionId: string): Promise<Story> {
    const { pages, ...story } = book;
    try {
      await this.transaction(async (manager) => {
        // The story belongs to whoever started the session.
        const session = await manager.findOne(GenerationSession, { where: { id: sessionId }, select: { ownerId: true } });
        await manager.insert(Story, { ...story, storyText: '', backgroundDescription: pages[0]?.sceneDescription ?? '', ownerId: session?.ownerId ?? null });
        await manager.insert(
          StoryPage,
          pages.map((page, index) => ({ ...page, id: randomUUID(), storyId: story.id, index, text: '' })),
        );
        const linked = await manager
          .createQueryBuilder()
          .update(GenerationSession)
          .set({ storyId: story.id })
          .where('id = :sessionId AND story_id IS NULL', { sessionId })
          .execute();
        if (!linked.affected) throw new StoryAlreadySaved();
      });
      return this.requireStory(story.id);
    } catch (error) {
      if (!(error instanceof StoryAlreadySaved)) throw error;
      const { storyId } = await this.requireSession(sessionId);
      if (!storyId) throw new Error(`Session ${sessionId} lost a story race but names no story`, { cause: error });
      return this.requireStory(storyId);
    }
  }

  findPages(storyId: string): Promise<StoryPage[]> {
    return this.dataSource.manager.find(StoryPage, { where: { storyId }, order: { index: 'ASC' } });
  }

  findPagesByStoryIds(storyIds: readonly string[]): Promise<StoryPage[]> {
    return this.dataSource.manager.find(StoryPage, { where: { storyId: In([...storyIds]) }, order: { storyId: 'ASC', index: 'ASC' } });
  }

  /** Writes the text only where there is none yet, then the story's joined text, in one transaction. */
  async savePageTextOnce(storyId: string, index: number, text: string): Promise<StoryPage> {
    return this.transaction(async (manager) => {
      await manager
        .createQueryBuilder()
        .update(StoryPage)
        .set({ text })
        .where(`story_id = :storyId AND page_index = :index AND text = ''`, { storyId, index })
        .execute();
      const pages = await manager.find(StoryPage, { where: { storyId }, order: { index: 'ASC' } });
      const page = pages.find((candidate) => candidate.index === index);
      if (!page) throw new Error(`Story ${storyId} has no page ${index}`);
      await manager.update(Story, { id: storyId }, { storyText: joinPageTexts(pages) });
      return page;
    });
  }

  async replacePageText(storyId: string, index: number, text: string): Promise<StoryPage | null> {
    return this.transaction(async (manager) => {
      const changed = await manager.update(StoryPage, { storyId, index }, { text });
      if (!changed.affected) return null;
      const pages = await manager.find(StoryPage, { where: { storyId }, order: { index: 'ASC' } });
      await manager.update(Story, { id: storyId }, { storyText: joinPageTexts(pages) });
      return pages.find((page) => page.index === index) ?? null;
    });
  }

  async replacePagePictures(storyId: string, index: number, sessionId: string, sceneDescription: string | null): Promise<PictureSwapResult> {
    return this.transaction(async (manager) => {
      // Locked, so a cancel waits for the swap or the swap sees the cancel; and two runs of the session swap one at a time.
      const session = await manager
        .createQueryBuilder(GenerationSession, 'session')
        .setLock('pessimistic_write')
        .where('session.id = :sessionId', { sessionId })
        .getOne();
      if (!session || !RUNNING_STATUSES.includes(session.status)) return { outcome: PictureSwap.SESSION_ENDED };
      if (session.options.kind === GenerationKind.PAGE_REPAINT && session.options.replacedMediaKeys) {
        return { outcome: PictureSwap.REPLACED, mediaKeys: session.options.replacedMediaKeys };
      }
      if (!(await manager.existsBy(Story, { id: storyId }))) return { outcome: PictureSwap.STORY_GONE };
      const old = await manager.find(GeneratedImage, {
        where: { storyId, pageIndex: index, imageType: In([ImageType.BACKGROUND, ImageType.COMBINED]), pendingSessionId: IsNull() },
        select: { id: true, filePath: true },
      });
      if (old.length > 0) await manager.delete(GeneratedImage, { id: In(old.map((image) => image.id)) });
      await manager.update(GeneratedImage, { pendingSessionId: sessionId, storyId }, { pendingSessionId: null });
      if (sceneDescription !== null) {
        await manager.update(StoryPage, { storyId, index }, { sceneDescription });
        if (index === 0) await manager.update(Story, { id: storyId }, { backgroundDescription: sceneDescription });
      }
      const mediaKeys = old.map((image) => image.filePath);
      await manager
        .createQueryBuilder()
        .update(GenerationSession)
        .set({ options: () => `options || jsonb_build_object('replacedMediaKeys', CAST(:mediaKeys AS jsonb))` })
        .setParameter('mediaKeys', JSON.stringify(mediaKeys))
        .where('id = :sessionId', { sessionId })
        .execute();
      return { outcome: PictureSwap.REPLACED, mediaKeys };
    });
  }

  async fillCharacterDescription(storyId: string, description: string): Promise<void> {
    await this.write((manager) =>
      manager
        .createQueryBuilder()
        .update(Story)
        .set({ characterDescription: description })
        .where(`id = :storyId AND character_description = ''`, { storyId })
        .execute(),
    );
  }

  async fillSceneDescription(storyId: string, index: number, description: string): Promise<void> {
    await this.transaction(async (manager) => {
      await manager
        .createQueryBuilder()
        .update(StoryPage)
        .set({ sceneDescription: description })
        .where(`story_id = :storyId AND page_index = :index AND scene_description = ''`, { storyId, index })
        .execute();
      if (index !== 0) return;
      await manager
        .createQueryBuilder()
        .update(Story)
        .set({ backgroundDescription: description })
        .where(`id = :storyId AND background_description = ''`, { storyId })
        .execute();
    });
  }

  findStory(id: string): Promise<Story | null> {
    return this.dataSource.manager.findOneBy(Story, { id });
  }

  async requireStory(id: string): Promise<Story> {
    const story = await this.findStory(id);
    if (!story) throw new Error(`Story ${id} does not exist`);
    return story;
  }

  /** Those of the stories the viewer may see; another owner's are left out as if missing. */
  findStoriesByIds(ids: readonly string[], viewer: Viewer): Promise<Story[]> {
    return this.dataSource.manager.findBy(Story, { id: In([...ids]), ...ownerCondition(viewer) });
  }

  /** The viewer's stories with text, newest first: a book planned but not yet written is left out. */
  listStories(limit: number, offset: number, viewer: Viewer): Promise<Story[]> {
    return this.dataSource.manager.find(Story, {
      where: { storyText: Not(''), ...ownerCondition(viewer) },
      order: { createdAt: 'DESC', id: 'DESC' },
      take: limit,
      skip: offset,
    });
  }

  /** The viewer's stories with text, newest first, after a position. */
  listStoriesAfter(after: ListPosition | null, limit: number, viewer: Viewer): Promise<KeysetPage<Story>> {
    const query = ownedBy(this.dataSource.manager.createQueryBuilder(Story, 'story'), 'story', viewer).andWhere(`story.story_text <> ''`);
    return keysetPage(query, 'story', after, limit);
  }

  /** Deletes the story and its image rows; returns the media keys of the images, for the caller to remove. */
  async deleteStory(id: string): Promise<{ deleted: boolean; mediaKeys: string[] }> {
    return this.transaction(async (manager) => {
      const images = await manager.find(GeneratedImage, { where: { storyId: id }, select: { filePath: true } });
      const result = await manager.delete(Story, { id });
      return { deleted: (result.affected ?? 0) > 0, mediaKeys: images.map((image) => image.filePath) };
    });
  }

  // --- images -----------------------------------------------------------------------------

  /**
   * Saves an image unless the story already has one of that type for that page (a draft: unless the
   * session has one of that type) because a racing run saved it first; returns the one that counts.
   * A draft only while its session runs: null once it has ended.
   */
  saveImageOnce(image: NewImage & { id: string }): Promise<GeneratedImage | null> {
    return image.pendingSessionId ? this.saveDraftOnce(image, image.pendingSessionId) : this.savePictureOnce(image);
  }

  private async savePictureOnce(image: NewImage & { id: string }): Promise<GeneratedImage> {
    await this.write((manager) => manager.createQueryBuilder().insert().into(GeneratedImage).values(image).orIgnore().execute());
    return this.dataSource.manager.findOneByOrFail(GeneratedImage, {
      storyId: image.storyId,
      imageType: image.imageType,
      pageIndex: image.pageIndex === null ? IsNull() : image.pageIndex,
      pendingSessionId: IsNull(),
    });
  }

  /** FOR SHARE on the session: a cancel's update of it waits for this insert, or this insert sees the cancel and saves nothing. */
  private async saveDraftOnce(image: NewImage & { id: string }, sessionId: string): Promise<GeneratedImage | null> {
    const running = RUNNING_STATUSES.map((_, position) => `$${11 + position}`).join(', ');
    await this.write((manager) =>
      manager.query(
        `INSERT INTO "generated_images" ("id", "story_id", "image_type", "page_index", "file_path", "width", "height", "prompt_used", "seed", "pending_session_id")
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         WHERE EXISTS (SELECT 1 FROM "generation_sessions" WHERE "id" = $10 AND "status" IN (${running}) FOR SHARE)
         ON CONFLICT DO NOTHING`,
        [
          image.id,
          image.storyId,
          image.imageType,
          image.pageIndex,
          image.filePath,
          image.width,
          image.height,
          image.promptUsed,
          image.seed,
          sessionId,
          ...RUNNING_STATUSES,
        ],
      ),
    );
    return this.dataSource.manager
      .createQueryBuilder(GeneratedImage, 'image')
      .innerJoin(GenerationSession, 'session', 'session.id = image.pending_session_id AND session.status IN (:...running)', { running: RUNNING_STATUSES })
      .where('image.pending_session_id = :sessionId AND image.image_type = :imageType', { sessionId, imageType: image.imageType })
      .getOne();
  }

  findImagesByStoryIds(storyIds: readonly string[]): Promise<GeneratedImage[]> {
    return this.dataSource.manager.find(GeneratedImage, {
      where: { storyId: In([...storyIds]), pendingSessionId: IsNull() },
      order: { createdAt: 'ASC' },
    });
  }

  findDraftImages(sessionId: string): Promise<GeneratedImage[]> {
    return this.dataSource.manager.find(GeneratedImage, { where: { pendingSessionId: sessionId }, order: { createdAt: 'ASC' } });
  }

  async discardDraftImages(sessionId: string): Promise<string[]> {
    return this.transaction(async (manager) => {
      const drafts = await manager.find(GeneratedImage, { where: { pendingSessionId: sessionId }, select: { id: true, filePath: true } });
      if (drafts.length > 0) await manager.delete(GeneratedImage, { id: In(drafts.map((image) => image.id)) });
      return drafts.map((image) => image.filePath);
    });
  }

  findEndedDrafts(after: string | null, limit: number): Promise<DraftFile[]> {
    const query = this.dataSource.manager
      .createQueryBuilder(GeneratedImage, 'image')
      .select(['image.id', 'image.filePath'])
      .where(`image.pending_session_id IS NOT NULL AND ${noRunningSession('image.pending_session_id')}`, { running: RUNNING_STATUSES })
      .orderBy('image.id', 'ASC')
      .limit(limit);
    if (after !== null) query.andWhere('image.id > :after', { after });
    return query.getMany();
  }

  async deleteEndedDrafts(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const result = await this.write((manager) =>
      manager
        .createQueryBuilder()
        .delete()
        .from(GeneratedImage, 'image')
        .where(`id IN (:...ids) AND pending_session_id IS NOT NULL AND ${noRunningSession('"generated_images"."pending_session_id"')}`, {
          ids: [...ids],
          running: RUNNING_STATUSES,
        })
        .returning(['id'])
        .execute(),
    );
    return (result.raw as { id: string }[]).map((row) => row.id);
  }

  async findNamedMediaKeys(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const rows = await this.dataSource.manager
      .createQueryBuilder(GeneratedImage, 'image')
      .select('DISTINCT image.file_path', 'key')
      .where('image.file_path IN (:...keys)', { keys: [...keys] })
      .getRawMany<{ key: string }>();
    return rows.map((row) => row.key);
  }
}

/**
 * SQL: the session named by `sessionColumn` has ended or is gone (the parameter `running` is RUNNING_STATUSES). An ended
 * session never runs again, so nothing can save a draft of it or swap one in.
 */
function noRunningSession(sessionColumn: string): string {
  return `NOT EXISTS (SELECT 1 FROM "generation_sessions" "session" WHERE "session"."id" = ${sessionColumn} AND "session"."status" IN (:...running))`;
}

/** Whether a query failed on the unique index or constraint of this name (PostgreSQL 23505). */
function violates(error: unknown, constraint: string): boolean {
  const driverError = error instanceof QueryFailedError ? (error.driverError as { code?: string; constraint?: string; message?: string }) : null;
  return driverError?.code === '23505' && (driverError.constraint === constraint || (driverError.message ?? '').includes(constraint));
}

function ownerCondition(viewer: Viewer): { ownerId?: string } {
  return viewer === SINGLE_USER ? {} : { ownerId: viewer.ownerId };
}

function ownedBy<T extends ObjectLiteral>(query: SelectQueryBuilder<T>, alias: string, viewer: Viewer): SelectQueryBuilder<T> {
  return viewer === SINGLE_USER ? query.where('TRUE') : query.where(`${alias}.owner_id = :ownerId`, { ownerId: viewer.ownerId });
}

/**
 * One page of a newest-first keyset list: rows strictly before `after` in
 * (created_at, id) order, each with its exact position (created_at to the
 * microsecond, as text, so no precision is lost on the way through a cursor).
 */
async function keysetPage<T extends ObjectLiteral & { id: string }>(
  query: SelectQueryBuilder<T>,
  alias: string,
  after: ListPosition | null,
  limit: number,
): Promise<KeysetPage<T>> {
  const totalCount = await query.clone().getCount();
  const page = query
    .clone()
    .addSelect(`to_char(${alias}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, 'position_created_at')
    .orderBy(`${alias}.created_at`, 'DESC')
    .addOrderBy(`${alias}.id`, 'DESC')
    .limit(limit + 1);
  if (after) {
    page.andWhere(`(${alias}.created_at, ${alias}.id) < (CAST(:afterCreatedAt AS timestamptz), CAST(:afterId AS uuid))`, {
      afterCreatedAt: after.createdAt,
      afterId: after.id,
    });
  }
  const { entities, raw } = await page.getRawAndEntities<{ position_created_at: string }>();
  const items = entities.slice(0, limit).map((node, index) => ({ node, position: { createdAt: raw[index].position_created_at, id: node.id } }));
  return { items, hasMore: entities.length > limit, totalCount };
}
