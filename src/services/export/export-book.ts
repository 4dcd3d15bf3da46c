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
 * any Hangul → `ko`, any kana → `ja`, Han characters without either → `zh`, Hebrew
 * letters → `he`, Devanagari → `hi`, and Arabic script → `ur` with a letter only Urdu
 * has (ٹ ڈ ڑ ں ے ۓ ہ ھ), else `fa` with one Persian adds to Arabic (پ چ ژ گ ک ی), else `ar`;
 * otherwise `en` (Latin and Cyrillic are shared by many languages, and a wrong guess is
 * worse than the default).
 */
export function bookLanguage(text: string): string {
  if (/[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]/u.test(text)) return 'ko';
  if (/[\u3040-\u30ff\u31f0-\u31ff]/u.test(text)) return 'ja';
  if (/\p{Script=Han}/u.test(text)) return 'zh';
  if (/\p{Script=Hebrew}/u.test(text)) return 'he';
  if (/\p{Script=Devanagari}/u.test(text)) return 'hi';
  if (/\p{Script=Arabic}/u.test(text)) {
    if (/[\u0679\u0688\u0691\u06ba\u06be\u06c1\u06d2\u06d3]/u.test(text)) return 'ur';
    if (/[\u067e\u0686\u0698\u06a9\u06af\u06cc]/u.test(text)) return 'fa';
    return 'ar';
  }
  return 'en';
}

/** Languages written right to left, by their BCP 47 primary subtag (those bookLanguage names and their neighbours). */
const RIGHT_TO_LEFT_LANGUAGES = new Set(['ar', 'fa', 'ur', 'he', 'yi', 'ps', 'sd', 'ug', 'ckb', 'dv']);

/** `rtl` for a book in a language written right to left (by the primary subtag of its BCP 47 tag), else `ltr`. */
export function bookDirection(language: string): 'rtl' | 'ltr' {
  return RIGHT_TO_LEFT_LANGUAGES.has(language.split('-')[0].toLowerCase()) ? 'rtl' : 'ltr';
}
