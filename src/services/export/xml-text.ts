/**
 * Characters XML 1.0 allows nowhere (https://www.w3.org/TR/xml/#charsets): C0 controls other
 * than tab, line feed and carriage return, U+FFFE, U+FFFF and unpaired surrogates. Saved text
 * has none (src/services/text/storable-text.ts); this keeps a file well-formed regardless.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is what this expression is for.
const NOT_XML_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/gu;

/**
 * Text for HTML and XML content and attribute values: markup characters (both quote kinds)
 * escaped, characters XML does not allow dropped, so an XHTML document stays well-formed.
 */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML_CHARACTERS, '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}
