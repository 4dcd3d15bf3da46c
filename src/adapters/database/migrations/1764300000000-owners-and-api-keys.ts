import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Owners (AUTH_MODE=api-key): each story and session records who started it; rows from
 * before, or made with AUTH_MODE=none, have none and are seen only with AUTH_MODE=none.
 * API keys are stored as SHA-256 hashes of the key, never the key itself.
 */
export class OwnersAndApiKeys1764300000000 implements MigrationInterface {
  name = 'OwnersAndApiKeys1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "stories" ADD COLUMN "owner_id" varchar(64)`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" ADD COLUMN "owner_id" varchar(64)`);
    // An owner's `stories` page, newest first.
    await queryRunner.query(`CREATE INDEX "IDX_stories_owner_created_at" ON "stories" ("owner_id", "created_at" DESC, "id" DESC)`);
    await queryRunner.query(`CREATE INDEX "IDX_generation_sessions_owner_status" ON "generation_sessions" ("owner_id", "status")`);
    await queryRunner.query(`
      CREATE TABLE "api_keys" (
        "id" uuid PRIMARY KEY,
        "owner_id" varchar(64) NOT NULL,
        "key_hash" char(64) NOT NULL UNIQUE,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "revoked_at" timestamptz
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "api_keys"`);
    await queryRunner.query(`DROP INDEX "IDX_generation_sessions_owner_status"`);
    await queryRunner.query(`DROP INDEX "IDX_stories_owner_created_at"`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" DROP COLUMN "owner_id"`);
    await queryRunner.query(`ALTER TABLE "stories" DROP COLUMN "owner_id"`);
  }
}
