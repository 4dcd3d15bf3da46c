import { Column, CreateDateColumn, Entity, OneToMany, PrimaryColumn, type Relation } from 'typeorm';
import { GeneratedImage } from './generated-image.entity.js';
import { StoryPage } from './story-page.entity.js';

@Entity({ name: 'stories' })
export class Story {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ type: 'varchar', length: 200 })
  title: string;

  @Column({ type: 'text' })
  prompt: string;

  @Column({ name: 'story_text', type: 'text' })
  storyText: string;

  @Column({ name: 'character_description', type: 'text', default: '' })
  characterDescription: string;

  @Column({ name: 'background_description', type: 'text', default: '' })
  backgroundDescription: string;

  /** Who started it (AUTH_MODE=api-key); null with AUTH_MODE=none. */
  @Column({ name: 'owner_id', type: 'varchar', length: 64, nullable: true })
  ownerId: string | null;

  /** The art style asked for, if any. */
  @Column({ type: 'varchar', length: 100, nullable: true })
  style: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @OneToMany(
    () => StoryPage,
    (page) => page.story,
  )
  pages?: Relation<StoryPage[]>;

  @OneToMany(
    () => GeneratedImage,
    (image) => image.story,
  )
  images?: Relation<GeneratedImage[]>;
}
