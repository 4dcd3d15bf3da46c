import { CompositingError } from '../images/compositing.js';
import { ImageGenerationError } from '../../ports/image-generator.js';
import { TextGenerationError } from '../../ports/text-generator.js';
import type { FailureReason } from '../../ports/generation-metrics.js';
import { PageRepaintFailed } from '../errors.js';

/** Errors whose message was written for users; anything else is a bug and says so. */
export function isExpectedFailure(error: unknown): error is Error {
  return (
    error instanceof TextGenerationError || error instanceof ImageGenerationError || error instanceof CompositingError || error instanceof PageRepaintFailed
  );
}

export function describeFailure(error: unknown): string {
  if (isExpectedFailure(error)) return error.message;
  const detail = error instanceof Error ? error.message : String(error);
  return `Unexpected error: ${detail} (see the server log for details)`;
}

/** The metric label for a failure that ended a run: a fixed set, never the message. */
export function failureReasonOf(error: unknown): FailureReason {
  if (error instanceof TextGenerationError) return error.failure;
  if (error instanceof ImageGenerationError) return 'image';
  if (error instanceof CompositingError) return 'compositing';
  if (error instanceof PageRepaintFailed) return 'page-repaint';
  return 'unexpected';
}
