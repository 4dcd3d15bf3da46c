import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1764240000000 implements MigrationInterface {
  name = 'InitialSchema1764240000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "stories" (
        "id" uuid PRIMARY KEY,
        "title" varchar(200) NOT NULL,
        "prompt" text NOT NULL,
        "story_text" text NOT NULL,
        "character_description" text NOT NULL DEFAULT '',
        "background_description" text NOT NULL DEFAULT '',
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    // `stories` lists newest first; id breaks ties so pages are stable.
    await queryRunner.query(`CREATE INDEX "IDX_stories_created_at" ON "stories" ("created_at" DESC, "id" DESC)`);

    await queryRunner.query(`
      CREATE TABLE "generated_images" (
        "id" uuid PRIMARY KEY,
        "story_id" uuid NOT NULL REFERENCES "stories" ("id") ON DELETE CASCADE,
        "image_type" varchar(16) NOT NULL CHECK ("image_type" IN ('CHARACTER', 'BACKGROUND', 'COMBINED')),
        "file_path" varchar(255) NOT NULL,
        "width" int NOT NULL,
        "height" int NOT NULL,
        "prompt_used" text NOT NULL,
        "seed" int,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_generated_images_story_type" ON "generated_images" ("story_id", "image_type")`);

    await queryRunner.query(`
      CREATE TABLE "generation_sessions" (
        "id" uuid PRIMARY KEY,
        "status" varchar(32) NOT NULL CHECK ("status" IN ('PENDING', 'GENERATING_STORY', 'GENERATING_IMAGES', 'COMPLETED', 'FAILED', 'CANCELLED')),
        "progress_percentage" int NOT NULL DEFAULT 0 CHECK ("progress_percentage" BETWEEN 0 AND 100),
        "stage" varchar(200),
        "error_message" text,
        "warnings" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "prompt" text NOT NULL,
        "options" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "attempts" int NOT NULL DEFAULT 0,
        "story_id" uuid REFERENCES "stories" ("id") ON DELETE SET NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    // Start-up recovery looks for sessions that are still running.
    await queryRunner.query(`CREATE INDEX "IDX_generation_sessions_status" ON "generation_sessions" ("status")`);
    await queryRunner.query(`CREATE INDEX "IDX_generation_sessions_story_id" ON "generation_sessions" ("story_id")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "generation_sessions"`);
    await queryRunner.query(`DROP TABLE "generated_images"`);
    await queryRunner.query(`DROP TABLE "stories"`);
  }
}
