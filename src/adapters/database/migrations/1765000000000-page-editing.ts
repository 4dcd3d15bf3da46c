import type { MigrationInterface, QueryRunner } from 'typeorm';

const RUNNING = `('PENDING', 'GENERATING_STORY', 'GENERATING_IMAGES')`;

/**
 * Page editing. A session says what kind of work it is in its options
 * (`kind`: every session so far made a new book); a page repaint also names its
 * page there. While a page is painted again its new pictures are saved as
 * drafts of the session (`pending_session_id`), beside the page's pictures in
 * use, and take their place in one transaction once both are saved.
 */
export class PageEditing1765000000000 implements MigrationInterface {
  name = 'PageEditing1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`UPDATE "generation_sessions" SET "options" = "options" || '{"kind": "book"}'::jsonb WHERE NOT ("options" ? 'kind')`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" ALTER COLUMN "options" SET DEFAULT '{"kind": "book"}'::jsonb`);
    // One repaint of a page at a time: a second one while the first runs is refused by this index.
    await queryRunner.query(`
      CREATE UNIQUE INDEX "UQ_generation_sessions_running_page_repaint" ON "generation_sessions" ("story_id", (("options"->>'pageIndex')::int))
      WHERE "options"->>'kind' = 'page-repaint' AND "status" IN ${RUNNING}`);

    await queryRunner.query(`ALTER TABLE "generated_images" ADD "pending_session_id" uuid`);
    await queryRunner.query(`DROP INDEX "UQ_generated_images_story_type_page"`);
    // Pictures in use: one character per story, one scene and one composite per page.
    await queryRunner.query(`
      CREATE UNIQUE INDEX "UQ_generated_images_story_type_page" ON "generated_images" ("story_id", "image_type", (COALESCE("page_index", -1)))
      WHERE "pending_session_id" IS NULL`);
    // Drafts: one of each type per repaint session, so two racing runs of it save one.
    await queryRunner.query(`
      CREATE UNIQUE INDEX "UQ_generated_images_pending_type" ON "generated_images" ("pending_session_id", "image_type")
      WHERE "pending_session_id" IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Drafts are no page's pictures; their files are left behind in MEDIA_DIR.
    await queryRunner.query(`DELETE FROM "generated_images" WHERE "pending_session_id" IS NOT NULL`);
    await queryRunner.query(`DROP INDEX "UQ_generated_images_pending_type"`);
    await queryRunner.query(`DROP INDEX "UQ_generated_images_story_type_page"`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_generated_images_story_type_page" ON "generated_images" ("story_id", "image_type", (COALESCE("page_index", -1)))`,
    );
    await queryRunner.query(`ALTER TABLE "generated_images" DROP COLUMN "pending_session_id"`);
    await queryRunner.query(`DROP INDEX "UQ_generation_sessions_running_page_repaint"`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" ALTER COLUMN "options" SET DEFAULT '{}'::jsonb`);
    await queryRunner.query(`UPDATE "generation_sessions" SET "options" = "options" - 'kind' WHERE "options"->>'kind' = 'book'`);
  }
}
