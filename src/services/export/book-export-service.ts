import { ImageType, type GeneratedImage, type Story, type StoryPage } from '../../entities/index.js';
import type { Logger } from '../../logger.js';
import type { BookRepository } from '../../ports/book-repository.js';
import type { ImageRepository } from '../../ports/image-repository.js';
import type { MediaStore } from '../../ports/media-store.js';
import type { FontFallback } from './book-fonts.js';
import { renderBookEpub } from './epub-exporter.js';
import { type BookForExport, type BookPicture, bookLanguage, EXPORT_FORMATS, type ExportFormat } from './export-book.js';
import { renderBookHtml } from './html-exporter.js';
import { type PdfPageSize, renderBookPdf } from './pdf-exporter.js';

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
  fonts: FontFallback;
  /** The export's time (EPUB dcterms:modified, PDF dates). */
  now?: () => Date;
}

/** Renders a saved book as HTML, EPUB or PDF: reads it and its pictures (through the MediaStore), then calls the format's exporter. */
export class BookExportService {
  private readonly now: () => Date;

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
   * gone leaves its page text only (logged, and listed in `pagesWithoutPicture`). Access is
   * the caller's business (the HTTP layer checks the link's signature).
   */
  async export(storyId: string, format: ExportFormat): Promise<ExportedBook | null> {
    const story = await this.books.findStory(storyId);
    if (!story) return null;
    const [pages, images] = await Promise.all([this.books.findPages(storyId), this.images.findImagesByStoryIds([storyId])]);
    const pagesWithoutPicture: number[] = [];
    const book = await this.bookOf(story, pages, images, pagesWithoutPicture);
    const { extension, contentType } = EXPORT_FORMATS[format];
    return { storyId, title: story.title, format, extension, contentType, bytes: await this.render(book, format), pagesWithoutPicture };
  }

  private async render(book: BookForExport, format: ExportFormat): Promise<Buffer> {
    switch (format) {
      case 'HTML':
        return renderBookHtml(book);
      case 'EPUB':
        return renderBookEpub(book, this.now());
      case 'PDF': {
        const { pdf, missingCharacters } = await renderBookPdf(book, { pageSize: this.options.pdfPageSize, fonts: this.options.fonts, created: this.now() });
        if (missingCharacters.length)
          this.logger.warn({ storyId: book.id, characters: missingCharacters.join('') }, 'PDF export: characters no bundled font has');
        return pdf;
      }
    }
  }

  private async bookOf(story: Story, pages: StoryPage[], images: GeneratedImage[], unreadable: number[]): Promise<BookForExport> {
    // Every saved story has its pages (the books migration gave older ones theirs); should one have none, its text is one page.
    const withText: Pick<StoryPage, 'index' | 'text' | 'sceneDescription'>[] = pages.length
      ? pages
      : [{ index: 0, text: story.storyText, sceneDescription: story.backgroundDescription }];
    return {
      id: story.id,
      title: story.title,
      prompt: story.prompt,
      style: story.style,
      createdAt: story.createdAt,
      language: bookLanguage(`${story.title}\n${story.storyText}`),
      pages: await Promise.all(
        withText.map(async (page) => {
          // The page's illustration; its bare scene where the character could not be placed.
          const image =
            images.find((candidate) => candidate.pageIndex === page.index && candidate.imageType === ImageType.COMBINED) ??
            images.find((candidate) => candidate.pageIndex === page.index && candidate.imageType === ImageType.BACKGROUND);
          return { index: page.index, text: page.text, picture: image ? await this.picture(story, page, image, unreadable) : null };
        }),
      ),
    };
  }

  private async picture(
    story: Story,
    page: Pick<StoryPage, 'index' | 'sceneDescription'>,
    image: GeneratedImage,
    unreadable: number[],
  ): Promise<BookPicture | null> {
    try {
      const png = await this.media.read(image.filePath);
      return { png, width: image.width, height: image.height, alt: page.sceneDescription || `${story.title}, page ${page.index + 1}` };
    } catch (error) {
      unreadable.push(page.index);
      this.logger.warn({ err: error, storyId: story.id, page: page.index, key: image.filePath }, 'export: a picture could not be read; the page is text only');
      return null;
    }
  }
}
