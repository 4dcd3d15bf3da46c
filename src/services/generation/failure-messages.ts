import { CompositingError } from '../images/compositing.js';
import { ImageGenerationError } from '../../ports/image-generator.js';
import { TextGenerationError } from '../../ports/text-generator.js';

/** Errors whose message was written for users; anything else is a bug and says so. */
export function isExpectedFailure(error: unknown): error is Error {
  return error instanceof TextGenerationError || error instanceof ImageGenerationError || error instanceof CompositingError;
}

export function describeFailure(error: unknown): string {
  if (isExpectedFailure(error)) return error.message;
  const detail = error instanceof Error ? error.message : String(error);
  return `Unexpected error: ${detail} (see the server log for details)`;
}
