import { randomUUID } from 'node:crypto';
import { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, type ImageType, type Story } from '../../src/entities/index.js';
import type { MediaStore } from '../../src/ports/media-store.js';
import type { NewImage, StoryRepository } from '../../src/ports/story-repository.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';

/**
 * Books, sessions and picture rows as the server leaves them, saved through the StoryRepository port, so a unit test
 * (InMemoryRepositories) and an integration test (the TypeORM repository) build the same rows the same way.
 */

/** What tells one picture row from another; the rest (64×64, prompt, seed) is the same for every test picture. */
export interface PictureFields {
  storyId: string;
  imageType: ImageType;
  /** Null for the character picture, the page's index for its scene and composite. */
  pageIndex: number | null;
  filePath: string;
  /** Null (the default): a picture in use; a session's id: a draft of that page repaint. */
  pendingSessionId?: string | null;
}

/** A new picture row of a 64×64 picture for saveImageOnce, with an id of its own. */
export function pictureRow({ pendingSessionId = null, ...fields }: PictureFields): NewImage & { id: string } {
  return { id: randomUUID(), ...fields, width: 64, height: 64, promptUsed: 'a meadow', seed: 1, pendingSessionId };
}

/**
 * Writes a `bytes`-byte PNG in `media` and saves its row; answers the file's media key.
 * Throws when the repository refuses the row (a draft of a session that is no longer running).
 */
export async function savePicture(
  repository: Pick<StoryRepository, 'saveImageOnce'>,
  media: Pick<MediaStore, 'save'>,
  picture: Omit<PictureFields, 'filePath'>,
  bytes = 1000,
): Promise<string> {
  const filePath = await media.save(Buffer.alloc(bytes, 7), 'png');
  if (!(await repository.saveImageOnce(pictureRow({ ...picture, filePath })))) throw new Error('the picture was refused');
  return filePath;
}

/** Saves a book of `pageCount` pages through a BOOK session, then marks that session COMPLETED; answers the story and the session's id. */
export async function saveCompletedBook(
  repository: Pick<StoryRepository, 'createSession' | 'saveBookOnce' | 'updateRunningSession'>,
  pageCount: number,
): Promise<{ story: Story; sessionId: string }> {
  const sessionId = randomUUID();
  await repository.createSession({
    id: sessionId,
    prompt: 'a race',
    options: { kind: GenerationKind.BOOK, style: null, seed: null, pageCount },
    stage: STAGE.queued,
    ownerId: null,
  });
  const page = { outline: 'o', sceneDescription: 'a meadow', characterSide: CharacterSide.LEFT, characterDistance: CharacterDistance.FAR };
  const story = await repository.saveBookOnce(
    { id: randomUUID(), title: 'T', prompt: 'a race', style: null, characterDescription: 'a fox', pages: Array.from({ length: pageCount }, () => page) },
    sessionId,
  );
  await repository.updateRunningSession(sessionId, { status: GenerationStatus.COMPLETED });
  return { story, sessionId };
}

/** Queues a PAGE_REPAINT session of page `pageIndex` of `storyId` (PENDING, no run yet); answers its id. */
export async function createRepaintSession(repository: Pick<StoryRepository, 'createSession'>, storyId: string, pageIndex: number): Promise<string> {
  const sessionId = randomUUID();
  await repository.createSession({
    id: sessionId,
    prompt: 'a race',
    options: { kind: GenerationKind.PAGE_REPAINT, style: null, seed: null, pageIndex, redescribe: false },
    stage: STAGE.queued,
    ownerId: null,
    storyId,
  });
  return sessionId;
}

/** A PAGE_REPAINT session of page `pageIndex` of `storyId` that a worker is running (GENERATING_IMAGES), so it may save drafts; answers its id. */
export async function startRepaint(
  repository: Pick<StoryRepository, 'createSession' | 'updateRunningSession'>,
  storyId: string,
  pageIndex: number,
): Promise<string> {
  const sessionId = await createRepaintSession(repository, storyId, pageIndex);
  await repository.updateRunningSession(sessionId, { status: GenerationStatus.GENERATING_IMAGES });
  return sessionId;
}
