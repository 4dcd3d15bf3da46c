import { ImageType, type GeneratedImage, type Story, type StoryPage } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { BookRepository } from '../../ports/book-repository.js';
import type { BookRenderer } from '../../ports/book-renderer.js';
import type { ImageRepository } from '../../ports/image-repository.js';
import type { MediaStore } from '../../ports/media-store.js';
import { type BookForExport, type BookPicture, bookLanguage, EXPORT_FORMATS, type ExportFormat } from './export-book.js';
import type { PdfPageSize } from './pdf-exporter.js';
import { type RenderedBookCache, type RenderedFileInputs, renderedFileKey } from './rendered-book-cache.js';

/** A book rendered into one file. */
export interface ExportedBook {
  storyId: string;
  title: string;
  format: ExportFormat;
  /** `html`, `epub` or `pdf`. */
  extension: string;
  /** The HTTP Content-Type of the file. */
  contentType: string;
  bytes: Buffer;
  /** 0-based pages whose picture is recorded but could not be read; they are text only in the file. */
  pagesWithoutPicture: number[];
}

export interface BookExportOptions {
  pdfPageSize: PdfPageSize;
  /** Does the rendering (in the server: on a thread of its own). */
  renderer: BookRenderer;
  /** Files already rendered; null renders every download anew. */
  cache: RenderedBookCache | null;
  /** The export's time (EPUB dcterms:modified, PDF dates); a cached file keeps the time it was rendered at. */
  now?: () => Date;
}

/** A page as the file will show it, before its picture is read. */
interface PlannedPage {
  index: number;
  text: string;
  alt: string;
  image: GeneratedImage | null;
}

interface RenderedFile {
  bytes: Buffer;
  pagesWithoutPicture: number[];
}

/**
 * Renders a saved book as HTML, EPUB or PDF: reads it and its pictures (through the
 * MediaStore), then has the BookRenderer make the file. With a cache, a file whose inputs
 * (see renderedFileKey) were rendered before is served as it was, and simultaneous
 * downloads of the same file share one render.
 */
export class BookExportService {
  private readonly now: () => Date;
  /** Renders under way, by cache key. */
  private readonly rendering = new Map<string, Promise<RenderedFile>>();

  constructor(
    private readonly books: Pick<BookRepository, 'findStory' | 'findPages'>,
    private readonly images: Pick<ImageRepository, 'findImagesByStoryIds'>,
    private readonly media: Pick<MediaStore, 'read'>,
    private readonly options: BookExportOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * The story's file in `format`; null when no story has that id. A picture whose file is
   * gone leaves its page text only (logged, listed in `pagesWithoutPicture`, and the file
   * is not cached, so the next download tries the picture again). Rejects with the
   * renderer's error. Access is the caller's business (the HTTP layer checks the link's signature).
   */
  async export(storyId: string, format: ExportFormat): Promise<ExportedBook | null> {
    const story = await this.books.findStory(storyId);
    if (!story) return null;
    const [pages, images] = await Promise.all([this.books.findPages(storyId), this.images.findImagesByStoryIds([storyId])]);
    const planned = plan(story, pages, images);
    const { extension, contentType } = EXPORT_FORMATS[format];
    const file = await this.file(story, planned, format);
    return { storyId, title: story.title, format, extension, contentType, ...file };
  }

  private async file(story: Story, pages: PlannedPage[], format: ExportFormat): Promise<RenderedFile> {
    const cache = this.options.cache;
    if (!cache) return this.render(story, pages, format);
    const key = renderedFileKey(this.inputsOf(story, pages, format));
    const cached = cache.get(key);
    if (cached) return { bytes: cached, pagesWithoutPicture: [] };
    let rendering = this.rendering.get(key);
    if (!rendering) {
      rendering = this.render(story, pages, format).then((file) => {
        if (file.pagesWithoutPicture.length === 0) cache.set(key, file.bytes);
        return file;
      });
      this.rendering.set(key, rendering);
      void rendering.then(
        () => this.rendering.delete(key),
        () => this.rendering.delete(key),
      );
    }
    const file = await rendering;
    return { bytes: file.bytes, pagesWithoutPicture: [...file.pagesWithoutPicture] };
  }

  private inputsOf(story: Story, pages: PlannedPage[], format: ExportFormat): RenderedFileInputs {
    return {
      format,
      pdfPageSize: this.options.pdfPageSize,
      storyId: story.id,
      title: story.title,
      prompt: story.prompt,
      style: story.style,
      createdAt: story.createdAt,
      language: languageOf(story),
      pages: pages.map(({ index, text, alt, image }) => ({
        index,
        text,
        alt,
        picture: image ? { id: image.id, key: image.filePath, width: image.width, height: image.height } : null,
      })),
    };
  }

  private async render(story: Story, pages: PlannedPage[], format: ExportFormat): Promise<RenderedFile> {
    const pagesWithoutPicture: number[] = [];
    const book: BookForExport = {
      id: story.id,
      title: story.title,
      prompt: story.prompt,
      style: story.style,
      createdAt: story.createdAt,
      language: languageOf(story),
      pages: await Promise.all(
        pages.map(async (page) => ({
          index: page.index,
          text: page.text,
          picture: page.image ? await this.picture(story, page, page.image, pagesWithoutPicture) : null,
        })),
      ),
    };
    const { bytes, missingCharacters } = await this.options.renderer.render({ book, format, pdfPageSize: this.options.pdfPageSize, modified: this.now() });
    if (missingCharacters.length) this.logger.warn({ storyId: story.id, characters: missingCharacters.join('') }, 'PDF export: characters no bundled font has');
    return { bytes, pagesWithoutPicture: pagesWithoutPicture.sort((a, b) => a - b) };
  }

  private async picture(story: Story, page: PlannedPage, image: GeneratedImage, unreadable: number[]): Promise<BookPicture | null> {
    try {
      const png = await this.media.read(image.filePath);
      return { png, width: image.width, height: image.height, alt: page.alt };
    } catch (error) {
      unreadable.push(page.index);
      this.logger.warn({ err: error, storyId: story.id, page: page.index, key: image.filePath }, 'export: a picture could not be read; the page is text only');
      return null;
    }
  }
}

function languageOf(story: Story): string {
  return bookLanguage(`${story.title}\n${story.storyText}`);
}

/** The pages the file will have, each with the picture it shows: its composite, else its bare scene (where the character could not be placed). */
function plan(story: Story, pages: StoryPage[], images: GeneratedImage[]): PlannedPage[] {
  // Every saved story has its pages (the books migration gave older ones theirs); should one have none, its text is one page.
  const withText: Pick<StoryPage, 'index' | 'text' | 'sceneDescription'>[] = pages.length
    ? pages
    : [{ index: 0, text: story.storyText, sceneDescription: story.backgroundDescription }];
  return withText.map((page) => ({
    index: page.index,
    text: page.text,
    alt: page.sceneDescription || `${story.title}, page ${page.index + 1}`,
    image:
      images.find((candidate) => candidate.pageIndex === page.index && candidate.imageType === ImageType.COMBINED) ??
      images.find((candidate) => candidate.pageIndex === page.index && candidate.imageType === ImageType.BACKGROUND) ??
      null,
  }));
}
