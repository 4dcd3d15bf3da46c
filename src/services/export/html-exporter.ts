import { type BookForExport, type BookPicture, bookDirection, paragraphsOf } from './export-book.js';
import { escapeXml } from './xml-text.js';

/**
 * A book as one self-contained HTML file: the title, then every page (its picture above
 * its text), pictures embedded as data: URIs, no scripts and nothing fetched when it is
 * opened (its CSP allows only data: images and the inline style). A page without a
 * picture is text only. The document carries the book's `lang` and direction (`rtl` for
 * Arabic, Persian, Urdu, Hebrew), and the title and each paragraph `dir="auto"`, so a
 * paragraph in the other direction (an English line in an Arabic book) is laid out by
 * its own first strong character. Returns UTF-8 bytes.
 */
export function renderBookHtml(book: BookForExport): Buffer {
  const date = book.createdAt.toISOString().slice(0, 10);
  const pages = book.pages
    .map(
      (page) => `<section class="page" id="page-${page.index + 1}" aria-label="Page ${page.index + 1}">
${page.picture ? figure(page.picture) : ''}
${paragraphsOf(page.text)
  .map((paragraph) => `<p dir="auto">${escapeXml(paragraph)}</p>`)
  .join('\n')}
<p class="number">${page.index + 1}</p>
</section>`,
    )
    .join('\n');

  return Buffer.from(`<!doctype html>
<html lang="${escapeXml(book.language)}" dir="${bookDirection(book.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="Story Agent">
<title>${escapeXml(book.title)}</title>
<style>
  :root { color-scheme: light dark; }
  body { font: 1.125rem/1.6 Georgia, 'Times New Roman', 'Noto Serif', 'Noto Sans CJK SC', serif; max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
  h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .25rem; }
  .meta { font: .875rem/1.4 system-ui, sans-serif; opacity: .75; margin: 0 0 2rem; }
  .page { margin: 0 0 3rem; break-after: page; }
  figure { margin: 0 0 1rem; }
  img { max-width: 100%; height: auto; display: block; border-radius: .5rem; }
  .number { text-align: center; font: .8125rem/1 system-ui, sans-serif; opacity: .6; }
</style>
</head>
<body>
<article>
<header>
<h1 dir="auto">${escapeXml(book.title)}</h1>
<p class="meta" dir="ltr" lang="en">Written by Story Agent on ${date} from the prompt “<bdi>${escapeXml(book.prompt)}</bdi>”${book.style ? `, in the style “${escapeXml(book.style)}”` : ''}</p>
</header>
${pages}
</article>
</body>
</html>
`);
}

function figure(picture: BookPicture): string {
  return `<figure><img src="data:image/png;base64,${picture.png.toString('base64')}" width="${picture.width}" height="${picture.height}" alt="${escapeXml(picture.alt)}"></figure>`;
}
