import yazl from 'yazl';
import { type BookForExport, bookDirection, paragraphsOf } from './export-book.js';
import { escapeXml } from './xml-text.js';

/**
 * A book as an EPUB 3 publication (https://www.w3.org/TR/epub-33/), reflowable: a title
 * page with the cover (page 0's picture, marked `cover-image`), then one XHTML document
 * per page with its picture above its text, and the navigation document. Metadata: the
 * title, `dc:language` (BookForExport.language), `urn:uuid:<story id>` as the unique
 * identifier, and `dcterms:modified` from `modified` (whole seconds, UTC).
 *
 * The OCF container (https://www.w3.org/TR/epub-33/#sec-container-zip) is a ZIP whose
 * first entry is `mimetype`, stored uncompressed and without extra fields; the rest is
 * deflated. Written with yazl; returns the file's bytes.
 *
 * Each document carries the book's language and direction, the title and each paragraph
 * `dir="auto"`; a book in a right-to-left language has `page-progression-direction="rtl"`
 * on its spine (https://www.w3.org/TR/epub-33/#attrdef-spine-page-progression-direction),
 * so a reader turns its pages leftwards.
 */
export async function renderBookEpub(book: BookForExport, modified: Date): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const fixed = { mtime: modified, forceDosTimestamp: true };
  zip.addBuffer(Buffer.from('application/epub+zip', 'ascii'), 'mimetype', { ...fixed, compress: false });
  const add = (name: string, text: string) => zip.addBuffer(Buffer.from(text, 'utf8'), name, fixed);

  add('META-INF/container.xml', CONTAINER_XML);
  const pages = book.pages.map((page) => ({ ...page, number: String(page.index + 1).padStart(2, '0') }));
  const cover = pages[0]?.picture ? pages[0] : null;
  add('OEBPS/style.css', STYLE_CSS);
  add('OEBPS/title.xhtml', xhtml(book, book.title, titlePage(book, cover ? `images/page-${cover.number}.png` : null)));
  add('OEBPS/nav.xhtml', xhtml(book, book.title, navigation(book, pages)));
  for (const page of pages) {
    const figure = page.picture ? `<figure><img src="images/page-${page.number}.png" alt="${escapeXml(page.picture.alt)}"/></figure>\n` : '';
    const text = paragraphsOf(page.text)
      .map((paragraph) => `<p dir="auto">${escapeXml(paragraph)}</p>`)
      .join('\n');
    add(
      `OEBPS/page-${page.number}.xhtml`,
      xhtml(book, `${book.title}: page ${page.index + 1}`, `<section class="page" aria-label="Page ${page.index + 1}">\n${figure}${text}\n</section>`),
    );
    // PNGs are compressed already.
    if (page.picture) zip.addBuffer(page.picture.png, `OEBPS/images/page-${page.number}.png`, { ...fixed, compress: false });
  }
  add('OEBPS/content.opf', packageDocument(book, pages, cover?.number ?? null, modified));
  zip.end();

  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const CONTAINER_XML = `<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
`;

const STYLE_CSS = `body { margin: 0 5%; line-height: 1.5; }
h1 { text-align: center; margin: 1em 0 .5em; }
.meta { text-align: center; font-size: .85em; }
figure { margin: 0 0 1em; text-align: center; }
img { max-width: 100%; max-height: 60vh; }
`;

function xhtml(book: BookForExport, title: string, body: string): string {
  const lang = escapeXml(book.language);
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" xml:lang="${lang}" lang="${lang}" dir="${bookDirection(book.language)}">
<head>
<meta charset="UTF-8"/>
<title>${escapeXml(title)}</title>
<link rel="stylesheet" type="text/css" href="style.css"/>
</head>
<body>
${body}
</body>
</html>
`;
}

function titlePage(book: BookForExport, coverHref: string | null): string {
  const cover = coverHref && book.pages[0]?.picture ? `<figure><img src="${coverHref}" alt="${escapeXml(book.pages[0].picture.alt)}"/></figure>\n` : '';
  return `<section epub:type="titlepage" aria-label="Title page">
${cover}<h1 dir="auto">${escapeXml(book.title)}</h1>
<p class="meta" dir="ltr" xml:lang="en" lang="en">Written by Story Agent from the prompt “<bdi>${escapeXml(book.prompt)}</bdi>”</p>
</section>`;
}

function navigation(book: BookForExport, pages: { index: number; number: string }[]): string {
  return `<nav epub:type="toc" id="toc">
<h1 dir="auto">${escapeXml(book.title)}</h1>
<ol>
<li><a href="title.xhtml">Title page</a></li>
${pages.map((page) => `<li><a href="page-${page.number}.xhtml">Page ${page.index + 1}</a></li>`).join('\n')}
</ol>
</nav>
<nav epub:type="landmarks" id="landmarks" hidden="hidden">
<ol>
<li><a epub:type="titlepage" href="title.xhtml">Title page</a></li>
${pages.length ? `<li><a epub:type="bodymatter" href="page-${pages[0].number}.xhtml">Start of the story</a></li>` : ''}
</ol>
</nav>`;
}

function packageDocument(book: BookForExport, pages: { number: string; picture: unknown }[], coverNumber: string | null, modified: Date): string {
  const items = pages.flatMap((page) => [
    `<item id="page-${page.number}" href="page-${page.number}.xhtml" media-type="application/xhtml+xml"/>`,
    ...(page.picture
      ? [
          `<item id="image-${page.number}" href="images/page-${page.number}.png" media-type="image/png"${page.number === coverNumber ? ' properties="cover-image"' : ''}/>`,
        ]
      : []),
  ]);
  return `<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id" xml:lang="${escapeXml(book.language)}">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="book-id">urn:uuid:${escapeXml(book.id)}</dc:identifier>
<dc:title>${escapeXml(book.title)}</dc:title>
<dc:language>${escapeXml(book.language)}</dc:language>
<dc:creator>Story Agent</dc:creator>
<dc:date>${book.createdAt.toISOString().slice(0, 10)}</dc:date>
<dc:description>${escapeXml(book.prompt)}</dc:description>
<meta property="dcterms:modified">${modified.toISOString().replace(/\.\d{3}Z$/, 'Z')}</meta>
${coverNumber ? `<meta name="cover" content="image-${coverNumber}"/>\n` : ''}</metadata>
<manifest>
<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
<item id="style" href="style.css" media-type="text/css"/>
<item id="title-page" href="title.xhtml" media-type="application/xhtml+xml"/>
${items.join('\n')}
</manifest>
<spine${bookDirection(book.language) === 'rtl' ? ' page-progression-direction="rtl"' : ''}>
<itemref idref="title-page"/>
${pages.map((page) => `<itemref idref="page-${page.number}"/>`).join('\n')}
</spine>
</package>
`;
}
