import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn, type Relation } from 'typeorm';
import type { GenerationStage } from '../services/progress/progress-plan.js';
import type { GenerationWarning } from '../services/generation/warnings.js';
import { GenerationKind, type GenerationStatus } from './enums.js';
import { Story } from './story.entity.js';

/** A new book: plan it, write it, illustrate it. */
export interface BookOptions {
  kind: GenerationKind.BOOK;
  style: string | null;
  seed: number | null;
  /** Pages in the book; absent on sessions started before books, which are one page. */
  pageCount?: number;
}

/** One page of a saved book painted again; the story is the session's storyId. */
export interface PageRepaintOptions {
  kind: GenerationKind.PAGE_REPAINT;
  /** The book's art style. */
  style: string | null;
  /** The scene's seed as given; null: a new random one. */
  seed: number | null;
  /** 0-based page to paint again. */
  pageIndex: number;
  /** Whether the scene description is first written again from the page's current text. */
  redescribe: boolean;
  /** With redescribe, once written: the new description, saved on the page together with the new pictures. */
  sceneDescription?: string;
  /** With redescribe, saved with sceneDescription: the page text it was written from (an edit made meanwhile earns a warning). */
  sceneDescribedFrom?: string;
  /**
   * Written by the swap's own transaction (BookRepository.replacePagePictures): the new pictures are the
   * page's, and these are the media keys of the old ones, whose files may still be there. A run resumed
   * after a crash finds this, removes those files and completes; it paints nothing again.
   */
  replacedMediaKeys?: string[];
}

/** What the session does and with what settings, stored as the `options` jsonb (the migration of 1765000000000 gave old rows their kind). */
export type GenerationOptions = BookOptions | PageRepaintOptions;

/** The page a session works on: a page repaint's (every event of it is about that page); null for a new book. */
export function pageOfSession(options: GenerationOptions): number | null {
  return options.kind === GenerationKind.PAGE_REPAINT ? options.pageIndex : null;
}

/** Whether subscribers get story text: a new book streams it; a page repaint leaves the text alone and sends none. */
export function streamsStoryText(options: GenerationOptions): boolean {
  return options.kind === GenerationKind.BOOK;
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

  @Column({ type: 'jsonb', default: () => `'{"kind": "book"}'::jsonb` })
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
