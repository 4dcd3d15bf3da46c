import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { CharacterDistance, CharacterSide } from './enums.js';
import { Story } from './story.entity.js';

/** One page of a book: its plan (outline, scene, where the character stands) and, once written, its text. */
@Entity({ name: 'story_pages' })
export class StoryPage {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'story_id', type: 'uuid' })
  storyId: string;

  @ManyToOne(
    () => Story,
    (story) => story.pages,
    { onDelete: 'CASCADE' },
  )
  @JoinColumn({ name: 'story_id' })
  story?: Relation<Story>;

  /** 0-based position in reading order. */
  @Column({ name: 'page_index', type: 'int' })
  index: number;

  /** Empty until the page has been written. */
  @Column({ type: 'text', default: '' })
  text: string;

  /** The plan's one line about what happens on this page. */
  @Column({ type: 'text', default: '' })
  outline: string;

  /** The Stable Diffusion prompt of the page's scene, without the character. */
  @Column({ name: 'scene_description', type: 'text', default: '' })
  sceneDescription: string;

  @Column({ name: 'character_side', type: 'varchar', length: 8, default: CharacterSide.CENTRE })
  characterSide: CharacterSide;

  @Column({ name: 'character_distance', type: 'varchar', length: 8, default: CharacterDistance.NEAR })
  characterDistance: CharacterDistance;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
