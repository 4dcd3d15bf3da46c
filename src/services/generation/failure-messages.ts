import { ImageGenerationError } from '../images/image-generator.js';
import { TextGenerationError } from '../text/text-generator.js';

/** Errors whose message was written for users; anything else is a bug and says so. */
const USER_FACING = [TextGenerationError, ImageGenerationError];

export function describeFailure(error: unknown): string {
  if (USER_FACING.some((type) => error instanceof type)) return (error as Error).message;
  if (error instanceof Error && error.name === 'CompositingError') return error.message;
  const detail = error instanceof Error ? error.message : String(error);
  return `Unexpected error: ${detail} (see the server log for details)`;
}
