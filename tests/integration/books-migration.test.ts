import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/adapters/database/migrations/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

describe('the books migration on a database holding single-scene stories', () => {
  const story = randomUUID();
  const storyWithoutImages = randomUUID();

  beforeAll(async () => {
    await database.migrateFirst(1);
    await database.sql(
      `INSERT INTO stories (id, title, prompt, story_text, character_description, background_description) VALUES
       ($1, 'The Fox', 'a fox', 'Once there was a fox.', 'a red fox', 'a snowy wood'),
       ($2, 'Unfinished', 'a hare', 'A hare ran.', '', '')`,
      [story, storyWithoutImages],
    );
    await database.sql(
      `INSERT INTO generation_sessions (id, status, prompt, options, story_id) VALUES ($1, 'COMPLETED', 'a fox', '{"style": "watercolor", "seed": 3}', $2)`,
      [randomUUID(), story],
    );
    await database.sql(
      `INSERT INTO generated_images (id, story_id, image_type, file_path, width, height, prompt_used, seed) VALUES
       ($1, $4, 'CHARACTER', 'images/c.png', 64, 64, 'a red fox', 1),
       ($2, $4, 'BACKGROUND', 'images/b.png', 64, 64, 'a snowy wood', 2),
       ($3, $4, 'COMBINED', 'images/m.png', 64, 64, 'a red fox | a snowy wood', null)`,
      [randomUUID(), randomUUID(), randomUUID(), story],
    );
    await database.migrateFirst(MIGRATIONS.length);
  });

  it('(page editing) gives every earlier session the kind book, keeping its options, and leaves every picture in use', async () => {
    const sessions = await database.sql<{ options: unknown }>('SELECT options FROM generation_sessions');
    expect(sessions).toEqual([{ options: { style: 'watercolor', seed: 3, kind: 'book' } }]);
    const drafts = await database.sql('SELECT id FROM generated_images WHERE pending_session_id IS NOT NULL');
    expect(drafts).toEqual([]);
  });

  it('makes every story a one-page book whose page 0 holds its text and scene', async () => {
    const pages = await database.sql('SELECT story_id, page_index, text, scene_description, character_side, character_distance FROM story_pages ORDER BY text');
    expect(pages).toEqual([
      { story_id: storyWithoutImages, page_index: 0, text: 'A hare ran.', scene_description: '', character_side: 'centre', character_distance: 'near' },
      {
        story_id: story,
        page_index: 0,
        text: 'Once there was a fox.',
        scene_description: 'a snowy wood',
        character_side: 'centre',
        character_distance: 'near',
      },
    ]);
  });

  it("puts the background and the composite on page 0, keeps the character on no page, and keeps the session's style", async () => {
    const images = await database.sql('SELECT image_type, page_index FROM generated_images ORDER BY image_type');
    expect(images).toEqual([
      { image_type: 'BACKGROUND', page_index: 0 },
      { image_type: 'CHARACTER', page_index: null },
      { image_type: 'COMBINED', page_index: 0 },
    ]);
    expect(await database.sql('SELECT id, style FROM stories ORDER BY title')).toEqual([
      { id: story, style: 'watercolor' },
      { id: storyWithoutImages, style: null },
    ]);
  });

  it('refuses a second character picture and a second scene for one page, and allows a scene on another page', async () => {
    const insert = (type: string, page: number | null) =>
      database.sql(
        `INSERT INTO generated_images (id, story_id, image_type, page_index, file_path, width, height, prompt_used) VALUES ($1, $2, $3, $4, 'images/x.png', 8, 8, 'x')`,
        [randomUUID(), story, type, page],
      );
    await expect(insert('CHARACTER', null)).rejects.toThrow(/UQ_generated_images_story_type_page/);
    await expect(insert('BACKGROUND', 0)).rejects.toThrow(/UQ_generated_images_story_type_page/);
    await expect(insert('CHARACTER', 1)).rejects.toThrow(/CHK_generated_images_page/);
    await insert('BACKGROUND', 1);
  });
});
