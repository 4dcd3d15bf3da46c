import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Books: a story gets pages, pictures belong to a page (the character picture
 * to none), and the art style is kept on the story. Every existing story
 * becomes a one-page book: its text and its background description are page
 * 0's, and its background and combined pictures belong to page 0.
 */
export class Books1764800000000 implements MigrationInterface {
  name = 'Books1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "stories" ADD "style" varchar(100)`);
    // The style was only kept on the session that made the story.
    await queryRunner.query(`
      UPDATE "stories" SET "style" = left(s."options"->>'style', 100)
      FROM "generation_sessions" s
      WHERE s."story_id" = "stories"."id" AND s."options"->>'style' IS NOT NULL`);

    await queryRunner.query(`
      CREATE TABLE "story_pages" (
        "id" uuid PRIMARY KEY,
        "story_id" uuid NOT NULL REFERENCES "stories" ("id") ON DELETE CASCADE,
        "page_index" int NOT NULL CHECK ("page_index" BETWEEN 0 AND 99),
        "text" text NOT NULL DEFAULT '',
        "outline" text NOT NULL DEFAULT '',
        "scene_description" text NOT NULL DEFAULT '',
        "character_side" varchar(8) NOT NULL DEFAULT 'centre' CHECK ("character_side" IN ('left', 'centre', 'right')),
        "character_distance" varchar(8) NOT NULL DEFAULT 'near' CHECK ("character_distance" IN ('near', 'far')),
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    // One row per page; also what makes two racing runs save a page once.
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_story_pages_story_index" ON "story_pages" ("story_id", "page_index")`);
    await queryRunner.query(`
      INSERT INTO "story_pages" ("id", "story_id", "page_index", "text", "scene_description", "created_at")
      SELECT gen_random_uuid(), "id", 0, "story_text", "background_description", "created_at" FROM "stories"`);

    await queryRunner.query(`ALTER TABLE "generated_images" ADD "page_index" int`);
    await queryRunner.query(`UPDATE "generated_images" SET "page_index" = 0 WHERE "image_type" <> 'CHARACTER'`);
    await queryRunner.query(`
      ALTER TABLE "generated_images" ADD CONSTRAINT "CHK_generated_images_page"
      CHECK (("image_type" = 'CHARACTER') = ("page_index" IS NULL))`);
    await queryRunner.query(`DROP INDEX "UQ_generated_images_story_type"`);
    // One character per story, one scene and one composite per page; -1 stands for "no page" so NULLs collide too.
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_generated_images_story_type_page" ON "generated_images" ("story_id", "image_type", (COALESCE("page_index", -1)))`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // A one-scene story cannot hold more than page 0's pictures.
    await queryRunner.query(`DELETE FROM "generated_images" WHERE "page_index" > 0`);
    await queryRunner.query(`DROP INDEX "UQ_generated_images_story_type_page"`);
    await queryRunner.query(`ALTER TABLE "generated_images" DROP CONSTRAINT "CHK_generated_images_page"`);
    await queryRunner.query(`ALTER TABLE "generated_images" DROP COLUMN "page_index"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_generated_images_story_type" ON "generated_images" ("story_id", "image_type")`);
    await queryRunner.query(`DROP TABLE "story_pages"`);
    await queryRunner.query(`ALTER TABLE "stories" DROP COLUMN "style"`);
  }
}
