/**
 * CLIP's text encoder reads 77 tokens (75 after its start and end tokens) and
 * drops the rest, so whatever leads a picture prompt must be short. This
 * estimates CLIP BPE tokens without the vocabulary: a short common word is one
 * token, a longer word one per ~6 letters (BPE splits rarer, longer words),
 * each punctuation mark one. It errs on the high side for plain English.
 */
export function estimateClipTokens(text: string): number {
  let tokens = 0;
  for (const piece of text.toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? []) {
    tokens += /[\p{L}\p{N}]/u.test(piece) ? Math.max(1, Math.ceil(piece.length / 6)) : 1;
  }
  return tokens;
}

/**
 * `text` cut to at most `maxTokens` estimated CLIP tokens: whole
 * comma-separated phrases while they fit, then whole words of the first phrase
 * that does not. Returns the text unchanged when it fits.
 */
export function fitClipTokens(text: string, maxTokens: number): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  if (estimateClipTokens(clean) <= maxTokens) return clean;
  const kept: string[] = [];
  for (const phrase of clean
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const candidate = [...kept, phrase].join(', ');
    if (estimateClipTokens(candidate) <= maxTokens) {
      kept.push(phrase);
      continue;
    }
    if (kept.length > 0) break;
    const words: string[] = [];
    for (const word of phrase.split(' ')) {
      if (estimateClipTokens([...words, word].join(' ')) > maxTokens) break;
      words.push(word);
    }
    return words.join(' ');
  }
  return kept.join(', ');
}
