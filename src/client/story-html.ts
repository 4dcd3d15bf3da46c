import type { ImageFieldsFragment, StoryFieldsFragment } from './generated/graphql.js';

/**
 * What the page and the CLI share about showing a story: its pictures in order, its
 * paragraphs and a file name from its title. No Node-only imports. The book files
 * themselves (HTML, EPUB, PDF) are made by the server (Story.exportUrl).
 */

/** The pictures a story has, combined first: [image, alt text]. */
export function storyPictures(story: StoryFieldsFragment): { image: ImageFieldsFragment; alt: string }[] {
  const pictures: { image: ImageFieldsFragment; alt: string }[] = [];
  if (story.combinedImage) pictures.push({ image: story.combinedImage, alt: `${story.title}: the character in the scene` });
  if (story.characterImage) pictures.push({ image: story.characterImage, alt: `The character: ${story.characterDescription}` });
  if (story.backgroundImage) pictures.push({ image: story.backgroundImage, alt: `The setting: ${story.backgroundDescription}` });
  return pictures;
}

/** Paragraphs at blank lines (or single newlines, as models often write them). */
export function paragraphs(text: string): string[] {
  return text
    .split(/\n+/)
    .map((paragraph) => paragraph.trim())
    .filter(Boolean);
}

/** A file name from the title: `the-lighthouse-keeper-and-the-storm.html`. */
export function storyFileName(story: Pick<StoryFieldsFragment, 'id' | 'title'>, extension: string): string {
  const slug = story.title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return `${slug || `story-${story.id.slice(0, 8)}`}.${extension}`;
}
