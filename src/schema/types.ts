import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { GenerationStatus, ImageType } from '../entities/enums.js';
import { ExportFormat } from '../services/export/export-book.js';

/**
 * The GraphQL shapes of the public contract (tests/contract/api-contract.graphql). Kept apart from the
 * entities: these are what clients see, the entities are what is stored.
 */
registerEnumType(GenerationStatus, { name: 'GenerationStatus' });
registerEnumType(ImageType, { name: 'ImageType' });
registerEnumType(ExportFormat, {
  name: 'ExportFormat',
  description: 'A file format a book downloads as (Story.exportUrl).',
  valuesConfig: {
    HTML: { description: 'One self-contained HTML file, pictures embedded (text/html).' },
    EPUB: { description: 'EPUB 3 for e-readers (application/epub+zip).' },
    PDF: { description: 'Print-ready PDF, A5 or Letter (EXPORT_PDF_PAGE_SIZE), fonts embedded (application/pdf).' },
  },
});

@ObjectType('GeneratedImage')
export class GeneratedImageView {
  @Field(() => ID)
  id: string;

  @Field(() => ImageType)
  imageType: ImageType;

  @Field(() => String, { description: 'Server-relative or absolute URL; GET returns image/png.' })
  url: string;

  @Field(() => Int)
  width: number;

  @Field(() => Int)
  height: number;

  @Field(() => String)
  promptUsed: string;

  @Field(() => Int, { nullable: true })
  seed: number | null;

  @Field(() => GraphQLISODateTime)
  createdAt: Date;

  @Field(() => Int, { nullable: true, description: 'The page this picture belongs to; null for the character picture.' })
  pageIndex: number | null;
}

@ObjectType('StoryPage', { description: "One page of a book: its text and its scene, with the book's one main character in it." })
export class StoryPageView {
  @Field(() => ID)
  id: string;

  @Field(() => Int, { description: '0-based position in reading order.' })
  index: number;

  @Field(() => String)
  text: string;

  @Field(() => String, { description: "The Stable Diffusion prompt of this page's scene, without the character." })
  sceneDescription: string;

  @Field(() => String, { description: "The plan's one line about what happens on this page (empty for stories made before books)." })
  outline: string;

  /** Resolved by field resolvers (backgroundImage, combinedImage); kept for them. */
  storyId: string;
}

@ObjectType('Story')
export class StoryView {
  @Field(() => ID)
  id: string;

  @Field(() => String)
  title: string;

  @Field(() => String)
  prompt: string;

  @Field(() => String)
  storyText: string;

  @Field(() => String)
  characterDescription: string;

  @Field(() => String)
  backgroundDescription: string;

  @Field(() => GraphQLISODateTime)
  createdAt: Date;

  @Field(() => String, { nullable: true, description: 'The art style asked for, if any.' })
  style: string | null;
}

@ObjectType('GenerationSession')
export class GenerationSessionView {
  @Field(() => ID, { description: 'A UUID.' })
  id: string;

  @Field(() => GenerationStatus)
  status: GenerationStatus;

  @Field(() => Int, { description: '0..100; never decreases during a session.' })
  progressPercentage: number;

  @Field(() => String, { nullable: true, description: 'Human-readable name of the current step.' })
  stage: string | null;

  @Field(() => String, { nullable: true, description: 'Set when status is FAILED: what went wrong, in words a user can act on.' })
  errorMessage: string | null;

  @Field(() => [String], { description: 'Partial-success notes, e.g. that images could not be generated.' })
  warnings: string[];

  @Field(() => String)
  prompt: string;

  @Field(() => String, { nullable: true, description: 'The art style asked for, if any.' })
  style: string | null;

  @Field(() => Int, { nullable: true, description: 'The seed asked for, if any.' })
  seed: number | null;

  @Field(() => Int, { description: 'Pages asked for (1 when pageCount was left out).' })
  pageCount: number;

  /** Resolved by a field resolver; kept for it. */
  storyId: string | null;

  @Field(() => GraphQLISODateTime)
  createdAt: Date;

  @Field(() => GraphQLISODateTime)
  updatedAt: Date;
}

@ObjectType('GenerationProgress', {
  description:
    "One progress event. The first event a subscriber receives is the session's\ncurrent state; the stream completes after a terminal status\n(COMPLETED, FAILED, CANCELLED).",
})
export class GenerationProgressView {
  @Field(() => ID)
  sessionId: string;

  @Field(() => GenerationStatus)
  status: GenerationStatus;

  @Field(() => Int)
  progressPercentage: number;

  @Field(() => String, { nullable: true })
  stage: string | null;

  @Field(() => String, { nullable: true, description: 'The next chunk of story text while the story is being written.' })
  storyTextDelta: string | null;

  @Field(() => Boolean, {
    description:
      "True when the story text received so far is void: replace it with this event's storyTextDelta. Set on a subscriber's first event (which carries all text so far) and when a story is written again from the start after a crash.",
  })
  storyTextReset: boolean;

  @Field(() => String, { nullable: true })
  errorMessage: string | null;

  @Field(() => [String])
  warnings: string[];

  @Field(() => ID, { nullable: true, description: 'Set once the story has been saved.' })
  storyId: string | null;

  @Field(() => Int, { nullable: true, description: 'Set on events about one page: the page whose text or picture this event is about.' })
  pageIndex: number | null;
}

@InputType('StartGenerationInput')
export class StartGenerationInput {
  @Field(() => String, { description: '1 to 2000 characters after trimming; anything else is a BAD_USER_INPUT error and nothing is stored.' })
  prompt: string;

  @Field(() => String, { nullable: true, description: "Optional art style hint, e.g. 'watercolor'." })
  style?: string | null;

  @Field(() => Int, { nullable: true, description: 'Optional seed for reproducible images.' })
  seed?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Pages (scenes) in the book, 1 to 12; default 1, one scene as in the original design. Outside 1..12 is BAD_USER_INPUT and nothing is stored.',
  })
  pageCount?: number | null;
}
