import { GenerationStatus } from '../../src/entities/enums.js';
import type { ProgressUpdate } from '../../src/ports/progress-bus.js';

/** A progress update mid-story, with whatever the test cares about changed. */
export function progressUpdate(sessionId: string, overrides: Partial<ProgressUpdate> = {}): ProgressUpdate {
  return {
    sessionId,
    status: GenerationStatus.GENERATING_STORY,
    progressPercentage: 10,
    stage: 'Writing the story',
    storyTextDelta: null,
    storyTextReset: false,
    errorMessage: null,
    warnings: [],
    storyId: null,
    pageIndex: null,
    ...overrides,
  };
}
