import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import type { ImageType } from './enums.js';
import { Story } from './story.entity.js';

@Entity({ name: 'generated_images' })
export class GeneratedImage {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'story_id', type: 'uuid' })
  storyId: string;

  @ManyToOne(
    () => Story,
    (story) => story.images,
    { onDelete: 'CASCADE' },
  )
  @JoinColumn({ name: 'story_id' })
  story?: Relation<Story>;

  @Column({ name: 'image_type', type: 'varchar', length: 16 })
  imageType: ImageType;

  /** The page this picture belongs to; null for the character picture, which every page uses. */
  @Column({ name: 'page_index', type: 'int', nullable: true })
  pageIndex: number | null;

  /** Key inside MEDIA_DIR, e.g. `images/2f1c….png`; never a user-supplied name. */
  @Column({ name: 'file_path', type: 'varchar', length: 255 })
  filePath: string;

  @Column({ type: 'int' })
  width: number;

  @Column({ type: 'int' })
  height: number;

  @Column({ name: 'prompt_used', type: 'text' })
  promptUsed: string;

  @Column({ type: 'int', nullable: true })
  seed: number | null;

  /**
   * The page repaint session this picture was painted by, while it is a draft: saved but not
   * yet the page's (the page still shows its old pictures). Null for every picture in use.
   */
  @Column({ name: 'pending_session_id', type: 'uuid', nullable: true })
  pendingSessionId: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
