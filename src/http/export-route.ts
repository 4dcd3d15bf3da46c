import type express from 'express';
import { ErrorCode } from '../client/error-codes.js';
import type { Logger } from '../logger.js';
import type { BookExportService } from '../services/export/book-export-service.js';
import { EXPORT_PATH_PATTERN, type ExportLinks, formatOfExtension } from '../services/export/export-links.js';
import { attachmentDisposition } from './content-disposition.js';
import { notFound, send } from './http-errors.js';

/**
 * GET /export/<story id>.<html|epub|pdf>: the book as one file, as an attachment named
 * after its title. With AUTH_MODE=api-key only a signed, unexpired link (Story.exportUrl)
 * is answered (403 otherwise); an unknown story is a 404 that says so.
 */
export function exportRoute(options: { exports: BookExportService; links: ExportLinks; logger: Logger }): express.RequestHandler {
  return async (req, res, next) => {
    const match = EXPORT_PATH_PATTERN.exec(req.path);
    const format = match ? formatOfExtension(match[2]) : null;
    if (!match || !format) return notFound(req, res, next);
    const storyId = match[1];
    if (!options.links.allows(storyId, format, req.query)) {
      return send(res, 403, 'This download link has expired or is not valid; load the story again for a fresh one.', ErrorCode.FORBIDDEN);
    }
    try {
      const book = await options.exports.export(storyId, format);
      if (!book) return send(res, 404, `No story has the id ${storyId}: it may have been deleted.`, ErrorCode.NOT_FOUND);
      res
        .status(200)
        .set({
          'Content-Type': book.contentType,
          'Content-Disposition': attachmentDisposition(book.title, book.extension, `story-${storyId.slice(0, 8)}`),
          'Content-Length': String(book.bytes.length),
          'Cache-Control': 'private, no-store',
        })
        .end(book.bytes);
    } catch (error) {
      options.logger.error({ err: error, storyId, format }, 'export failed');
      next(error);
    }
  };
}
