import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { ExportFormat } from './export-book.js';
import type { PdfPageSize } from './pdf-exporter.js';

/** Everything a rendered file depends on, apart from its time (a cached file keeps the time it was first rendered at). */
export interface RenderedFileInputs {
  format: ExportFormat;
  pdfPageSize: PdfPageSize;
  storyId: string;
  title: string;
  prompt: string;
  style: string | null;
  createdAt: Date;
  language: string;
  pages: {
    index: number;
    text: string;
    /** The picture's alt text (its scene description). */
    alt: string;
    /** The picture's row id and media key (a repaint saves a new file under a new key); null for a text-only page. */
    picture: { id: string; key: string; width: number; height: number } | null;
  }[];
}

/**
 * The cache key of a file: SHA-256 (hex) of its inputs. An edited text, a repainted
 * picture or another format or paper size gives another key, so nothing is ever
 * invalidated; files of old versions fall out as the cache fills.
 */
export function renderedFileKey(inputs: RenderedFileInputs): string {
  const { createdAt, ...rest } = inputs;
  return createHash('sha256')
    .update(JSON.stringify({ ...rest, createdAt: createdAt.toISOString() }))
    .digest('hex');
}

/**
 * Rendered book files in memory, least recently downloaded dropped first, at most
 * `maxBytes` of file bytes together; a file larger than that is not kept.
 */
export class RenderedBookCache {
  private readonly files: LRUCache<string, Buffer>;

  /** `maxBytes` > 0 (EXPORT_CACHE_MB × 2²⁰ in the server). */
  constructor(maxBytes: number) {
    this.files = new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (bytes) => Math.max(1, bytes.length) });
  }

  /** The file under `key` (see renderedFileKey), or undefined. */
  get(key: string): Buffer | undefined {
    return this.files.get(key);
  }

  set(key: string, bytes: Buffer): void {
    this.files.set(key, bytes);
  }
}
