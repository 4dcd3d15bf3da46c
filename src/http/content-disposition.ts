/**
 * `Content-Disposition: attachment` for a download named after a title (RFC 6266): a plain
 * ASCII `filename` for old clients and, when the name is not plain ASCII, `filename*` with
 * the UTF-8 name percent-encoded as RFC 8187 (formerly 5987) defines. Characters that are
 * not allowed in file names on common systems (`/ \ : * ? " < > |`, controls) become
 * spaces; the ASCII name drops accents and replaces every other character with `-`.
 * `fallbackStem` is used when nothing of the title is left (`story-1a2b3c4d`).
 */
export function attachmentDisposition(title: string, extension: string, fallbackStem: string): string {
  const cleaned = title
    .replace(/[\p{Cc}\p{Cf}/\\:*?"<>|]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '');
  const unicodeName = `${truncate(cleaned, 120) || fallbackStem}.${extension}`;
  const asciiStem = cleaned
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9 ._()-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-. ]+|[-. ]+$/g, '');
  const asciiName = `${asciiStem.slice(0, 120).trim() || fallbackStem}.${extension}`;
  if (asciiName === unicodeName) return `attachment; filename="${asciiName}"`;
  return `attachment; filename="${asciiName}"; filename*=UTF-8''${encodeRfc8187(unicodeName)}`;
}

/** At most `max` characters (code points, never half a surrogate pair). */
function truncate(text: string, max: number): string {
  return [...text].slice(0, max).join('').trim();
}

/** RFC 8187 value-chars: attr-char as is, everything else as %XX of its UTF-8 bytes. */
function encodeRfc8187(text: string): string {
  return encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
