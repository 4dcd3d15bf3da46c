/** A book as the exporters get it: everything in memory, pictures as PNG bytes. */

export const ExportFormat = { HTML: 'HTML', EPUB: 'EPUB', PDF: 'PDF' } as const;
export type ExportFormat = (typeof ExportFormat)[keyof typeof ExportFormat];

/** Per format: the file name extension and the Content-Type of the file. */
export const EXPORT_FORMATS: Record<ExportFormat, { extension: string; contentType: string }> = {
  HTML: { extension: 'html', contentType: 'text/html; charset=utf-8' },
  EPUB: { extension: 'epub', contentType: 'application/epub+zip' },
  PDF: { extension: 'pdf', contentType: 'application/pdf' },
};

export interface BookPicture {
  png: Buffer;
  /** Pixels. */
  width: number;
  height: number;
  alt: string;
}

interface BookPageForExport {
  /** 0-based. */
  index: number;
  text: string;
  /** The page's illustration (its composite, else its scene); null when it has none or its file is gone. */
  picture: BookPicture | null;
}

export interface BookForExport {
  /** The story's UUID. */
  id: string;
  title: string;
  prompt: string;
  style: string | null;
  createdAt: Date;
  /** BCP 47 tag (see bookLanguage). */
  language: string;
  pages: BookPageForExport[];
}

/** Paragraphs at line breaks, trimmed, empty ones dropped (models write single or double newlines). */
export function paragraphsOf(text: string): string[] {
  return text
    .split(/\n+/)
    .map((paragraph) => paragraph.trim())
    .filter(Boolean);
}

/**
 * The book's language for EPUB `dc:language`, HTML `lang` and the PDF catalog. Stories do
 * not record a language, so it is read from the script where the script alone names one:
 * any Hangul → `ko`, any kana → `ja`, Han characters without either → `zh`; otherwise
 * `en` (Latin and Cyrillic are shared by many languages, and a wrong guess is worse than
 * the default).
 */
export function bookLanguage(text: string): string {
  if (/[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]/u.test(text)) return 'ko';
  if (/[\u3040-\u30ff\u31f0-\u31ff]/u.test(text)) return 'ja';
  if (/\p{Script=Han}/u.test(text)) return 'zh';
  return 'en';
}
