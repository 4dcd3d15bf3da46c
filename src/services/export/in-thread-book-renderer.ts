import type { BookRenderer, BookRenderJob, RenderedBookFile } from '../../ports/book-renderer.js';
import type { FontFallback } from './book-fonts.js';
import { renderBookEpub } from './epub-exporter.js';
import { renderBookHtml } from './html-exporter.js';
import { renderBookPdf } from './pdf-exporter.js';

/**
 * Calls the format's exporter on the calling thread. Unit tests and the bench use it
 * directly; the server runs it inside the export thread (src/adapters/export/), since a
 * PDF holds the event loop for up to a second and a half. Pictures are only read.
 */
export class InThreadBookRenderer implements BookRenderer {
  constructor(private readonly fonts: FontFallback) {}

  async render({ book, format, pdfPageSize, modified }: BookRenderJob): Promise<RenderedBookFile> {
    switch (format) {
      case 'HTML':
        return { bytes: renderBookHtml(book), missingCharacters: [] };
      case 'EPUB':
        return { bytes: await renderBookEpub(book, modified), missingCharacters: [] };
      case 'PDF': {
        const { pdf, missingCharacters } = await renderBookPdf(book, { pageSize: pdfPageSize, fonts: this.fonts, created: modified });
        return { bytes: pdf, missingCharacters };
      }
    }
  }

  async close(): Promise<void> {}
}
