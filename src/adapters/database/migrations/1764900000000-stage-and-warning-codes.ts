import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Machine-readable states: each session keeps its stage's code beside the
 * label, and its warnings with their codes and pages beside the messages.
 * Existing rows get the code their label stands for (labels of the time, see
 * progress-plan.ts), and their warnings the code UNCLASSIFIED.
 */
export class StageAndWarningCodes1764900000000 implements MigrationInterface {
  name = 'StageAndWarningCodes1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "generation_sessions" ADD "stage_code" varchar(32)`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" ADD "warning_details" jsonb NOT NULL DEFAULT '[]'::jsonb`);
    await queryRunner.query(`
      UPDATE "generation_sessions" SET "stage_code" = CASE
        WHEN "stage" = 'Waiting in the queue' THEN 'QUEUED'
        WHEN "stage" = 'Planning the book' THEN 'PLANNING'
        WHEN "stage" = 'Writing the story' THEN 'WRITING_STORY'
        WHEN "stage" LIKE 'Writing page % of %' THEN 'WRITING_PAGE'
        WHEN "stage" = 'Painting the pictures' THEN 'PAINTING'
        WHEN "stage" LIKE 'Retrying (%' THEN 'RETRYING'
        WHEN "status" IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN "status"
      END`);
    await queryRunner.query(`
      UPDATE "generation_sessions" SET "warning_details" = (
        SELECT jsonb_agg(jsonb_build_object('code', 'UNCLASSIFIED', 'message', w.message, 'pageIndex', NULL) ORDER BY w.position)
        FROM jsonb_array_elements_text("warnings") WITH ORDINALITY AS w(message, position)
      )
      WHERE jsonb_array_length("warnings") > 0`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "generation_sessions" DROP COLUMN "warning_details"`);
    await queryRunner.query(`ALTER TABLE "generation_sessions" DROP COLUMN "stage_code"`);
  }
}
