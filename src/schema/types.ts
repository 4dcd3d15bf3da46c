import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { GenerationKind, GenerationStatus, ImageType } from '../entities/enums.js';
import { WARNING, WarningCode } from '../services/generation/warnings.js';
import { GenerationStage, STAGE } from '../services/progress/progress-plan.js';
import { ExportFormat } from '../services/export/export-book.js';

/**
 * The GraphQL shapes of the public contract (tests/contract/api-contract.graphql). Kept apart from the
 * entities: these are what clients see, the entities are what is stored.
 */
registerEnumType(GenerationStatus, { name: 'GenerationStatus' });
registerEnumType(ImageType, { name: 'ImageType' });
registerEnumType(GenerationKind, {
  name: 'GenerationKind',
  description: 'What a generation session does.',
  valuesConfig: {
    BOOK: { description: 'Plans, writes and illustrates a new book (startGeneration).' },
    PAGE_REPAINT: { description: "Paints one page of a saved book again (regeneratePageImage); the session's story is that book." },
  },
});
registerEnumType(GenerationStage, {
  name: 'GenerationStage',
  description: 'What a generation is doing, for clients to decide on; `stage` is the same for people, with details.',
  valuesConfig: Object.fromEntries(Object.values(STAGE).map(({ code, label }) => [code, { description: label }])),
});
registerEnumType(WarningCode, {
  name: 'WarningCode',
  description: 'What kind of partial failure a warning is about, for clients to decide on; the message says it in words.',
  valuesConfig: Object.fromEntries(Object.values(WARNING).map(({ code, meaning }) => [code, { description: meaning }])),
});

@ObjectType('GenerationWarning', { description: 'One warning of a generation: its code, its message in words and the page it is about.' })
export class GenerationWarningView {
  @Field(() => WarningCode)
  code: WarningCode;

  @Field(() => String, { description: 'The same as the matching entry of `warnings`.' })
  message: string;

  @Field(() => Int, { nullable: true, description: 'The page this warning is about; null for the whole book or the character picture.' })
  pageIndex: number | null;
}
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

  @Field(() => String, {
    description:
      'Server-relative or absolute URL; GET returns image/png. Absolute unless the server runs with PUBLIC_URLS=relative (from PUBLIC_BASE_URL, else the host the request reached).',
  })
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

  @Field(() => GenerationStage, {
    nullable: true,
    description: 'The current step as a code, for clients to decide on (`stage` may carry details such as the page); null only for sessions from before codes.',
  })
  stageCode: GenerationStage | null;

  @Field(() => String, { nullable: true, description: 'Set when status is FAILED: what went wrong, in words a user can act on.' })
  errorMessage: string | null;

  @Field(() => [String], { description: 'Partial-success notes, e.g. that images could not be generated.' })
  warnings: string[];

  @Field(() => [GenerationWarningView], { description: 'The same warnings, in the same order, with their codes and pages.' })
  warningDetails: GenerationWarningView[];

  @Field(() => String)
  prompt: string;

  @Field(() => String, { nullable: true, description: 'The art style asked for, if any.' })
  style: string | null;

  @Field(() => Int, { nullable: true, description: 'The seed asked for, if any.' })
  seed: number | null;

  @Field(() => Int, { description: 'Pages asked for (1 when pageCount was left out, and for a page repaint).' })
  pageCount: number;

  @Field(() => GenerationKind, { description: 'A new book, or one page of a saved book painted again.' })
  kind: GenerationKind;

  @Field(() => Int, { nullable: true, description: 'PAGE_REPAINT: the page (0-based) being painted again; null for a new book.' })
  pageIndex: number | null;

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

  @Field(() => GenerationStage, { nullable: true, description: 'The current step as a code; see GenerationSession.stageCode.' })
  stageCode: GenerationStage | null;

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

  @Field(() => [GenerationWarningView], { description: 'The same warnings, in the same order, with their codes and pages.' })
  warningDetails: GenerationWarningView[];

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

@ObjectType('PageInfo', { description: 'Where a page of a connection stands (Relay cursor connections). Lists here are read forwards only: first and after.' })
export class PageInfoView {
  @Field(() => Boolean, { description: 'Whether more items follow this page: ask again with after: endCursor.' })
  hasNextPage: boolean;

  @Field(() => Boolean, { description: 'Always false: lists are read forwards only.' })
  hasPreviousPage: boolean;

  @Field(() => String, { nullable: true, description: "The first edge's cursor; null on an empty page." })
  startCursor: string | null;

  @Field(() => String, { nullable: true, description: "The last edge's cursor, to pass as after; null on an empty page." })
  endCursor: string | null;
}

@ObjectType('StoryEdge')
export class StoryEdgeView {
  @Field(() => String, { description: 'Opaque; pass it as after to read on from this story.' })
  cursor: string;

  @Field(() => StoryView)
  node: StoryView;
}

@ObjectType('StoryConnection', { description: 'A page of stories, newest first.' })
export class StoryConnectionView {
  @Field(() => [StoryEdgeView])
  edges: StoryEdgeView[];

  @Field(() => PageInfoView)
  pageInfo: PageInfoView;

  @Field(() => Int, { description: "The viewer's stories in the whole list, every page together." })
  totalCount: number;
}

@ObjectType('GenerationSessionEdge')
export class GenerationSessionEdgeView {
  @Field(() => String, { description: 'Opaque; pass it as after to read on from this session.' })
  cursor: string;

  @Field(() => GenerationSessionView)
  node: GenerationSessionView;
}

@ObjectType('GenerationSessionConnection', { description: 'A page of generation sessions, newest first.' })
export class GenerationSessionConnectionView {
  @Field(() => [GenerationSessionEdgeView])
  edges: GenerationSessionEdgeView[];

  @Field(() => PageInfoView)
  pageInfo: PageInfoView;

  @Field(() => Int, { description: "The viewer's sessions of the statuses asked for, every page together." })
  totalCount: number;
}

@ObjectType('RemoveStoryPayload', {
  description:
    "What removeStory removed. Clients evict it from a normalized cache by this id: Apollo Client's cache.evict({ id: cache.identify({ __typename: 'Story', id }) }), urql Graphcache's cache.invalidate({ __typename: 'Story', id }), Relay's @deleteRecord.",
})
export class RemoveStoryPayloadView {
  @Field(() => ID, { description: 'The id of the story that was removed.' })
  deletedStoryId: string;
}
