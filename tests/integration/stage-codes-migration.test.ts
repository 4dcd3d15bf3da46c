import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageAndWarningCodes1764900000000 } from '../../src/adapters/database/migrations/1764900000000-stage-and-warning-codes.js';
import { MIGRATIONS } from '../../src/adapters/database/migrations/index.js';

/** Migrations before the one under test; later ones are not run, so the rows are as it found them. */
const BEFORE = MIGRATIONS.indexOf(StageAndWarningCodes1764900000000);
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

describe('the stage and warning codes migration on sessions saved with labels only', () => {
  const sessions = {
    queued: { status: 'PENDING', stage: 'Waiting in the queue' },
    page: { status: 'GENERATING_STORY', stage: 'Writing page 2 of 6' },
    retrying: { status: 'GENERATING_STORY', stage: 'Retrying (attempt 2 of 3): Ollama is busy' },
    painting: { status: 'GENERATING_IMAGES', stage: 'Painting the pictures' },
    completed: { status: 'COMPLETED', stage: 'Completed', warnings: ['The background picture could not be painted', 'The story was cut'] },
    cancelled: { status: 'CANCELLED', stage: 'Cancelled' },
    unknown: { status: 'GENERATING_STORY', stage: 'Something a later version said' },
  } as const;
  const ids = Object.fromEntries(Object.keys(sessions).map((name) => [name, randomUUID()])) as Record<keyof typeof sessions, string>;

  beforeAll(async () => {
    await database.migrateFirst(BEFORE);
    for (const [name, session] of Object.entries(sessions)) {
      await database.sql(`INSERT INTO generation_sessions (id, status, stage, prompt, options, warnings) VALUES ($1, $2, $3, 'a fox', '{}', $4)`, [
        ids[name as keyof typeof sessions],
        session.status,
        session.stage,
        JSON.stringify('warnings' in session ? session.warnings : []),
      ]);
    }
    await database.migrateFirst(BEFORE + 1);
  });

  it('gives each session the code its label stands for, and none where the label is not one it knows', async () => {
    const rows = await database.sql<{ id: string; stage_code: string | null }>('SELECT id, stage_code FROM generation_sessions');
    const codeOf = (name: keyof typeof sessions) => rows.find((row) => row.id === ids[name])!.stage_code;
    expect(Object.fromEntries(Object.keys(sessions).map((name) => [name, codeOf(name as keyof typeof sessions)]))).toEqual({
      queued: 'QUEUED',
      page: 'WRITING_PAGE',
      retrying: 'RETRYING',
      painting: 'PAINTING',
      completed: 'COMPLETED',
      cancelled: 'CANCELLED',
      unknown: null,
    });
  });

  it('keeps the warnings, in order, with the code UNCLASSIFIED and no page', async () => {
    const [completed] = await database.sql<{ warning_details: unknown }>('SELECT warning_details FROM generation_sessions WHERE id = $1', [ids.completed]);
    expect(completed.warning_details).toEqual([
      { code: 'UNCLASSIFIED', message: 'The background picture could not be painted', pageIndex: null },
      { code: 'UNCLASSIFIED', message: 'The story was cut', pageIndex: null },
    ]);
    const [queued] = await database.sql<{ warning_details: unknown }>('SELECT warning_details FROM generation_sessions WHERE id = $1', [ids.queued]);
    expect(queued.warning_details).toEqual([]);
  });
});
