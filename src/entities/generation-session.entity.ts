import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn, type Relation } from 'typeorm';
import type { GenerationStage } from '../services/progress/progress-plan.js';
import type { GenerationWarning } from '../services/generation/warnings.js';
import type { GenerationStatus } from './enums.js';
import { Story } from './story.entity.js';

export interface GenerationOptions {
  style: string | null;
  seed: number | null;
  /** Pages in the book; absent on sessions started before books, which are one page. */
  pageCount?: number;
}

@Entity({ name: 'generation_sessions' })
export class GenerationSession {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ type: 'varchar', length: 32 })
  status: GenerationStatus;

  @Column({ name: 'progress_percentage', type: 'int', default: 0 })
  progressPercentage: number;

  /** The stage's label (may carry details: which page, why a retry). */
  @Column({ type: 'varchar', length: 200, nullable: true })
  stage: string | null;

  /** The stage's code (progress-plan.ts's STAGE); null only on rows whose stage could not be told from before codes. */
  @Column({ name: 'stage_code', type: 'varchar', length: 32, nullable: true })
  stageCode: GenerationStage | null;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage: string | null;

  @Column({ type: 'jsonb', default: () => "'[]'::jsonb" })
  warnings: string[];

  /** The same warnings with their codes (warnings.ts's WARNING) and pages, in the same order. */
  @Column({ name: 'warning_details', type: 'jsonb', default: () => "'[]'::jsonb" })
  warningDetails: GenerationWarning[];

  @Column({ type: 'text' })
  prompt: string;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  options: GenerationOptions;

  /** How many times a run has been started; bounds resuming after restarts. */
  @Column({ type: 'int', default: 0 })
  attempts: number;

  @Column({ name: 'story_id', type: 'uuid', nullable: true })
  storyId: string | null;

  @ManyToOne(() => Story, { nullable: true, onDelete: 'SET NULL' })
  @JoinColumn({ name: 'story_id' })
  story?: Relation<Story> | null;

  /** Who started it (AUTH_MODE=api-key); null with AUTH_MODE=none. */
  @Column({ name: 'owner_id', type: 'varchar', length: 64, nullable: true })
  ownerId: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
