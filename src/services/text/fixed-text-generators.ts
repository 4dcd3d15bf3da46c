import type { TextGenerator, TextGeneratorLease, TextGenerators } from '../../ports/text-generator.js';

/** Every generation gets `text` (TEXT_BACKEND set: the backend never changes); `backend` names it in logs. */
export function fixedTextGenerators(backend: string, text: TextGenerator): TextGenerators {
  const lease: TextGeneratorLease = { backend, text, release: () => {} };
  return { forGeneration: async () => lease };
}
