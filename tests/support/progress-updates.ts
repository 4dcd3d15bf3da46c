import { GenerationStatus } from '../../src/entities/enums.js';
import type { ProgressUpdate } from '../../src/ports/progress-bus.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';

/** A progress update mid-story, with whatever the test cares about changed. */
export function progressUpdate(sessionId: string, overrides: Partial<ProgressUpdate> = {}): ProgressUpdate {
  return {
    sessionId,
    status: GenerationStatus.GENERATING_STORY,
    progressPercentage: 10,
    stage: STAGE.writingStory.label,
    stageCode: STAGE.writingStory.code,
    storyTextDelta: null,
    storyTextReset: false,
    errorMessage: null,
    warnings: [],
    warningDetails: [],
    storyId: null,
    pageIndex: null,
    ...overrides,
  };
}
