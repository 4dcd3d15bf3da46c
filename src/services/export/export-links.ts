import type { MediaUrlSigner } from '../auth/media-url-signer.js';
import { EXPORT_FORMATS, type ExportFormat } from './export-book.js';

/** `/export/<story id>.<html|epub|pdf>`: the route the HTTP layer serves book files under. */
export const EXPORT_PATH_PATTERN = /^\/export\/([0-9a-f-]{36})\.(html|epub|pdf)$/;

/** The format a file extension of an export path names. */
export function formatOfExtension(extension: string): ExportFormat | null {
  const entry = Object.entries(EXPORT_FORMATS).find(([, format]) => format.extension === extension);
  return entry ? (entry[0] as ExportFormat) : null;
}

/**
 * Where a book's file is downloaded from: the one place export paths are made and checked.
 * With a signer (AUTH_MODE=api-key) the URL carries an expiring HMAC signature, like a
 * picture's, so a browser or `curl` downloads it without an Authorization header; the
 * signed key is the path (`export/<id>.<ext>`), which no media key can equal.
 */
export class ExportLinks {
  constructor(private readonly signer: MediaUrlSigner | null) {}

  /** The server path of a book's file (`/export/<id>.<ext>`, signed with a signer); the GraphQL layer makes it absolute. */
  urlFor(storyId: string, format: ExportFormat): string {
    const key = exportKey(storyId, format);
    const url = `/${key}`;
    return this.signer ? this.signer.sign(url, key) : url;
  }

  /** Whether a request for this story's file may be answered: always without a signer, else only with a valid, unexpired signature. */
  allows(storyId: string, format: ExportFormat, query: { expires?: unknown; signature?: unknown }): boolean {
    return !this.signer || this.signer.verify(exportKey(storyId, format), query);
  }
}

function exportKey(storyId: string, format: ExportFormat): string {
  return `export/${storyId}.${EXPORT_FORMATS[format].extension}`;
}
