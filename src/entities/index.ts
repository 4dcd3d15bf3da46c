export { CharacterDistance, CharacterSide, GenerationStatus, ImageType, RUNNING_STATUSES, isTerminal } from './enums.js';
export { Story } from './story.entity.js';
export { StoryPage } from './story-page.entity.js';
export { GeneratedImage } from './generated-image.entity.js';
export { GenerationSession, type GenerationOptions } from './generation-session.entity.js';

import { GeneratedImage } from './generated-image.entity.js';
import { GenerationSession } from './generation-session.entity.js';
import { StoryPage } from './story-page.entity.js';
import { Story } from './story.entity.js';

export const ENTITIES = [Story, StoryPage, GeneratedImage, GenerationSession];
