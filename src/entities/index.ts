export { CharacterDistance, CharacterSide, GenerationKind, GenerationStatus, ImageType, RUNNING_STATUSES, isTerminal } from './enums.js';
export { Story } from './story.entity.js';
export { StoryPage } from './story-page.entity.js';
export { GeneratedImage } from './generated-image.entity.js';
export {
  GenerationSession,
  pageOfSession,
  streamsStoryText,
  type BookOptions,
  type GenerationOptions,
  type PageRepaintOptions,
} from './generation-session.entity.js';

import { GeneratedImage } from './generated-image.entity.js';
import { GenerationSession } from './generation-session.entity.js';
import { StoryPage } from './story-page.entity.js';
import { Story } from './story.entity.js';

export const ENTITIES = [Story, StoryPage, GeneratedImage, GenerationSession];
