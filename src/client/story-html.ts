import type { ImageFieldsFragment, ImageType, StoryFieldsFragment } from './generated/graphql.js';

/**
 * A story as one self-contained HTML file: text and pictures (as data: URIs),
 * no scripts, nothing fetched when it is opened. Shared by the page's download
 * button and `story-agent export`; no Node-only imports.
 */

export interface EmbeddedImage {
  imageType: ImageType;
  /** `data:image/png;base64,…` */
  dataUri: string;
  width: number;
  height: number;
  alt: string;
}

export interface ExportOptions {
  /** Makes an image `url` from the API fetchable (absolute against the server). */
  resolve: (url: string) => string;
  fetch?: typeof fetch;
}

export interface ExportedStory {
  html: string;
  /** Pictures that could not be downloaded, in words; they are left out of the file. */
  missing: string[];
}

const IMAGE_NAMES: Record<ImageType, string> = { CHARACTER: 'character', BACKGROUND: 'background', COMBINED: 'combined illustration' };

/** The pictures a story has, combined first: [image, alt text]. */
export function storyPictures(story: StoryFieldsFragment): { image: ImageFieldsFragment; alt: string }[] {
  const pictures: { image: ImageFieldsFragment; alt: string }[] = [];
  if (story.combinedImage) pictures.push({ image: story.combinedImage, alt: `${story.title}: the character in the scene` });
  if (story.characterImage) pictures.push({ image: story.characterImage, alt: `The character: ${story.characterDescription}` });
  if (story.backgroundImage) pictures.push({ image: story.backgroundImage, alt: `The setting: ${story.backgroundDescription}` });
  return pictures;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
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

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

export function renderStoryHtml(story: StoryFieldsFragment, images: EmbeddedImage[]): string {
  const combined = images.find((image) => image.imageType === 'COMBINED');
  const parts = images.filter((image) => image.imageType !== 'COMBINED');
  const figure = (image: EmbeddedImage, caption: string) =>
    `<figure><img src="${image.dataUri}" width="${image.width}" height="${image.height}" alt="${escapeHtml(image.alt)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
  const created = new Date(story.createdAt);
  const date = Number.isNaN(created.getTime()) ? story.createdAt : created.toISOString().slice(0, 10);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="Story Agent">
<title>${escapeHtml(story.title)}</title>
<style>
  :root { color-scheme: light dark; }
  body { font: 1.125rem/1.6 Georgia, 'Times New Roman', serif; max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
  h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .25rem; }
  .meta { font: .875rem/1.4 system-ui, sans-serif; opacity: .75; margin: 0 0 1.5rem; }
  figure { margin: 0 0 1.5rem; }
  img { max-width: 100%; height: auto; display: block; border-radius: .5rem; }
  figcaption { font: .8125rem/1.4 system-ui, sans-serif; opacity: .75; margin-top: .375rem; }
  .parts { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); margin-top: 2rem; }
</style>
</head>
<body>
<article>
<h1>${escapeHtml(story.title)}</h1>
<p class="meta">Written by Story Agent on ${escapeHtml(date)} from the prompt “${escapeHtml(story.prompt)}”</p>
${combined ? figure(combined, 'The illustration') : ''}
${paragraphs(story.storyText)
  .map((paragraph) => `<p>${escapeHtml(paragraph)}</p>`)
  .join('\n')}
${parts.length ? `<div class="parts">${parts.map((image) => figure(image, image.imageType === 'CHARACTER' ? 'The character' : 'The setting')).join('')}</div>` : ''}
</article>
</body>
</html>
`;
}

/** Downloads the story's pictures and renders the file. */
export async function exportStoryHtml(story: StoryFieldsFragment, options: ExportOptions): Promise<ExportedStory> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const missing: string[] = [];
  const loaded = await Promise.all(
    storyPictures(story).map(async ({ image, alt }): Promise<EmbeddedImage | null> => {
      const name = IMAGE_NAMES[image.imageType];
      try {
        const response = await fetchImpl(options.resolve(image.url));
        if (!response.ok) {
          missing.push(`The ${name} could not be downloaded (HTTP ${response.status}).`);
          return null;
        }
        const declared = response.headers.get('content-type')?.split(';')[0].trim().toLowerCase() ?? '';
        const type = /^image\/[a-z0-9.+-]+$/.test(declared) ? declared : 'image/png';
        const bytes = new Uint8Array(await response.arrayBuffer());
        return { imageType: image.imageType, dataUri: `data:${type};base64,${bytesToBase64(bytes)}`, width: image.width, height: image.height, alt };
      } catch (error) {
        missing.push(`The ${name} could not be downloaded (${error instanceof Error ? error.message : String(error)}).`);
        return null;
      }
    }),
  );
  return {
    html: renderStoryHtml(
      story,
      loaded.filter((image): image is EmbeddedImage => image !== null),
    ),
    missing,
  };
}
