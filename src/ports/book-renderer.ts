import type { BookForExport, ExportFormat } from '../services/export/export-book.js';
import type { PdfPageSize } from '../services/export/pdf-exporter.js';

/** One book to render into one file. */
export interface BookRenderJob {
  book: BookForExport;
  format: ExportFormat;
  /** Used by PDF only. */
  pdfPageSize: PdfPageSize;
  /** The file's time: EPUB dcterms:modified, PDF CreationDate and ModDate. */
  modified: Date;
}

export interface RenderedBookFile {
  bytes: Buffer;
  /** PDF: characters no bundled font has (drawn as missing-glyph boxes); empty for the other formats. */
  missingCharacters: string[];
}

/**
 * Turns a book into a file (HTML, EPUB or PDF). Rendering is CPU work of 0.1–1.5 s per
 * file, so the server's implementation runs it on a thread of its own.
 */
export interface BookRenderer {
  /**
   * The job's file. The renderer may take over the memory of the pictures' PNG buffers
   * (a worker thread gets them transferred, which leaves the caller's Buffers empty), so
   * pass buffers nobody else holds and do not read them afterwards. Rejects when the
   * exporter throws (its message kept) or the thread rendering it dies, and after close().
   */
  render(job: BookRenderJob): Promise<RenderedBookFile>;
  /** Stops rendering: queued jobs reject, running ones are abandoned; resolves once any thread has exited. */
  close(): Promise<void>;
}
