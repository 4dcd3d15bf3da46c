import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An index on the media key of image records, so that the sweep of files no record names (OrphanFileSweep) asks
 * "which of these few hundred keys are named?" by index look-ups rather than by reading every record per batch.
 */
export class MediaKeyIndex1765100000000 implements MigrationInterface {
  name = 'MediaKeyIndex1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX "IDX_generated_images_file_path" ON "generated_images" ("file_path")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "IDX_generated_images_file_path"`);
  }
}
