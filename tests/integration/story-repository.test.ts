import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataSource, openDatabase } from '../../src/adapters/database/data-source.js';
import { ImageType } from '../../src/entities/enums.js';
import { TypeOrmStoryRepository } from '../../src/adapters/database/story-repository.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let database: TestDatabase;
let dataSource: DataSource;
let repository: TypeOrmStoryRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  const config = { kind: 'postgres' as const, url: database.url, poolSize: 5 };
  dataSource = await openDatabase(createDataSource(config), config);
  repository = new TypeOrmStoryRepository(dataSource, { serializeWrites: false });
});

afterAll(async () => {
  await dataSource.destroy();
  await database.drop();
});

async function newSession(): Promise<string> {
  const id = randomUUID();
  await repository.createSession({ id, prompt: 'a race', options: { style: null, seed: null }, stage: STAGE.queued, ownerId: null });
  return id;
}

describe('StoryRepository under two runs of one session', () => {
  it('keeps exactly one story when both save at once, and both get that one back', async () => {
    const sessionId = await newSession();
    const drafts = [randomUUID(), randomUUID()].map((id) => ({ id, title: `T ${id}`, prompt: 'a race', storyText: 'Once upon a time.' }));
    const saved = await Promise.all(drafts.map((draft) => repository.saveStoryOnce(draft, sessionId)));
    expect(saved[0].id).toBe(saved[1].id);
    const rows = await database.sql<{ id: string }>('SELECT id FROM stories');
    expect(rows).toEqual([{ id: saved[0].id }]);
    expect((await repository.requireSession(sessionId)).storyId).toBe(saved[0].id);
  });

  it('keeps exactly one image of a type when both save it, and both get that one back', async () => {
    const sessionId = await newSession();
    const story = await repository.saveStoryOnce({ id: randomUUID(), title: 'T', prompt: 'p', storyText: 'Once.' }, sessionId);
    const image = (filePath: string) => ({
      id: randomUUID(),
      storyId: story.id,
      imageType: ImageType.CHARACTER,
      filePath,
      width: 64,
      height: 64,
      promptUsed: 'a fox',
      seed: 1,
    });
    const [first, second] = await Promise.all([repository.saveImageOnce(image('images/a.png')), repository.saveImageOnce(image('images/b.png'))]);
    expect(first.id).toBe(second.id);
    expect(await repository.findImagesByStoryIds([story.id])).toHaveLength(1);
  });

  it('finds running sessions nobody has touched for a while, and not the ones touched since', async () => {
    const [silent, alive] = [await newSession(), await newSession()];
    await database.sql(`UPDATE generation_sessions SET updated_at = now() - interval '1 minute' WHERE id = ANY($1)`, [[silent, alive]]);
    await repository.touchSession(alive);
    const abandoned = (await repository.findAbandonedSessions(30_000)).map((session) => session.id);
    expect(abandoned).toContain(silent);
    expect(abandoned).not.toContain(alive);
  });
});
