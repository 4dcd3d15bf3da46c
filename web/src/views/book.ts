import { html, nothing } from 'lit-html';
import type { StoryFieldsFragment } from '../../../src/client/generated/graphql.js';
import type { PageEditPanel } from './page-editing.js';

/**
 * A book of several pages as the page shows it: the plan (the main character,
 * one line per page, each with its picture as soon as it is painted) and a
 * reader of one page at a time (picture above text, previous/next, arrow keys).
 * Pure data and templates; the views keep the state and repaint.
 */

export interface PageView {
  index: number;
  outline: string;
  /** Saved text, or what has streamed of it so far. */
  text: string;
  picture: { url: string; alt: string; width: number; height: number } | null;
}

export interface BookPanel {
  character: string;
  pages: PageView[];
  /** 0-based index of the page the reader shows. */
  current: number;
  /** The page that is being written, if any (its text grows). */
  writing: number | null;
  /** Whether pictures may still come (a missing one says "Painting…" rather than nothing). */
  painting: boolean;
  onGo: (index: number) => void;
  /** Paint again and Edit text for the page the reader shows; null while the book is still being made. */
  edit: PageEditPanel | null;
}

/** Text streamed per page: deltas of events with a pageIndex, without the blank line that separates pages in storyText. */
export class StreamedPages {
  private readonly texts = new Map<number, string>();

  /** Folds one progress event in; a reset drops everything (saved pages come with the next load). */
  add(event: { storyTextDelta: string | null; storyTextReset: boolean; pageIndex?: number | null }): void {
    if (event.storyTextReset) this.texts.clear();
    if (event.storyTextReset || !event.storyTextDelta || event.pageIndex == null) return;
    const before = this.texts.get(event.pageIndex) ?? '';
    this.texts.set(event.pageIndex, before === '' ? event.storyTextDelta.replace(/^\n+/, '') : before + event.storyTextDelta);
  }

  get(index: number): string {
    return this.texts.get(index) ?? '';
  }

  /** The highest page with streamed text, or null. */
  latest(): number | null {
    return this.texts.size ? Math.max(...this.texts.keys()) : null;
  }
}

/** The book panel of a saved story with more than one page; null for a one-page story (shown the classic way). */
export function bookOf(
  story: StoryFieldsFragment,
  {
    current,
    streamed,
    writing,
    painting,
    onGo,
    edit,
  }: {
    current: number;
    streamed?: StreamedPages;
    writing: number | null;
    painting: boolean;
    onGo: (index: number) => void;
    /** Editing of a finished book's pages: the panel of the page given. */
    edit?: (index: number, text: string) => PageEditPanel;
  },
): BookPanel | null {
  if (story.pages.length < 2) return null;
  const pages = story.pages.map((page) => {
    const image = page.combinedImage ?? page.backgroundImage;
    return {
      index: page.index,
      outline: page.outline,
      text: page.text || (streamed?.get(page.index) ?? ''),
      picture: image ? { url: image.url, alt: `Page ${page.index + 1}: ${page.sceneDescription}`, width: image.width, height: image.height } : null,
    };
  });
  const shown = Math.min(current, pages.length - 1);
  return { character: story.characterDescription, pages, current: shown, writing, painting, onGo, edit: edit?.(shown, pages[shown].text) ?? null };
}

/** Left and right arrow keys turn the pages while a book is shown, unless the reader is typing. */
export function turnPagesWithArrowKeys(signal: AbortSignal, book: () => BookPanel | null): void {
  document.addEventListener(
    'keydown',
    (event) => {
      const shown = book();
      const target = event.target as HTMLElement | null;
      if (!shown || event.altKey || event.ctrlKey || event.metaKey || target?.closest('input, textarea, select, [contenteditable]')) return;
      if (event.key === 'ArrowLeft' && shown.current > 0) shown.onGo(shown.current - 1);
      else if (event.key === 'ArrowRight' && shown.current < shown.pages.length - 1) shown.onGo(shown.current + 1);
      else return;
      event.preventDefault();
    },
    { signal },
  );
}

const pictureTemplate = (page: PageView, painting: boolean, className: string) =>
  page.picture
    ? html`<img class=${className} src=${page.picture.url} alt=${page.picture.alt} decoding="async" width=${page.picture.width} height=${page.picture.height} />`
    : html`<span class="placeholder">${painting ? 'Painting…' : 'No picture'}</span>`;

function paragraphsOf(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trimStart())
    .filter(Boolean);
}

/** A page's picture while it is painted again: its session's progress over the old picture. */
export const repaintTemplate = (index: number, repaint: NonNullable<PageEditPanel['repaint']>) => html`
  <div id="repaint-progress" class="repaint-progress" role="status" aria-live="polite">
    <progress max="100" .value=${repaint.percent} aria-label=${`Painting page ${index + 1} again`}></progress>
    <span>${repaint.stage || 'Painting the page again'} (${repaint.percent}%)</span>
  </div>
`;

/** Paint again, Edit text, and the inline editor with Save and Cancel; "Repaint to match" after a saved edit. */
export const editTemplate = (index: number, edit: PageEditPanel) => {
  const busy = edit.repaint !== null || edit.saving;
  const editing = edit.draft !== null;
  return html`
    <div class="page-tools" role="group" aria-label=${`Change page ${index + 1}`}>
      <button type="button" id="paint-again" ?disabled=${busy} @click=${edit.onPaintAgain}>Paint again</button>
      <button type="button" id="edit-text" aria-expanded=${String(editing)} aria-controls="page-editor" ?disabled=${busy || editing} @click=${edit.onEdit}>
        Edit text
      </button>
    </div>
    ${
      editing
        ? html`
          <form
            id="page-editor"
            class="page-editor"
            @submit=${(event: Event) => {
              event.preventDefault();
              edit.onSave();
            }}
          >
            <label for="page-text-input">Text of page ${index + 1}</label>
            <textarea
              id="page-text-input"
              rows="8"
              maxlength="4000"
              aria-describedby="page-text-help"
              aria-invalid=${String(edit.error !== null)}
              aria-errormessage="page-edit-error"
              .value=${edit.draft ?? ''}
              @input=${(event: Event) => edit.onInput((event.target as HTMLTextAreaElement).value)}
              @keydown=${(event: KeyboardEvent) => {
                if (event.key === 'Escape') edit.onCancel();
                else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) edit.onSave();
              }}
            ></textarea>
            <p id="page-text-help" class="meta">1 to 4000 characters (Ctrl+Enter saves, Escape cancels). The picture stays as it is until you paint it again.</p>
            <div class="actions">
              <button type="submit" id="save-text" class="primary" ?disabled=${edit.saving}>${edit.saving ? 'Saving…' : 'Save'}</button>
              <button type="button" id="cancel-edit" ?disabled=${edit.saving} @click=${edit.onCancel}>Cancel</button>
            </div>
          </form>
        `
        : nothing
    }
    ${
      edit.saved
        ? html`<p id="page-saved" class="note" role="status">
          Text saved; the picture still shows the old text.
          <button type="button" id="repaint-to-match" @click=${edit.onRepaintToMatch}>Repaint to match</button>
        </p>`
        : nothing
    }
    <p id="page-edit-error" class="error" role="alert" ?hidden=${edit.error === null}>${edit.error ?? ''}</p>
  `;
};

export const bookTemplate = (book: BookPanel | null) => {
  if (!book) return html`<section id="book" class="book" hidden></section>`;
  const page = book.pages[book.current];
  const total = book.pages.length;
  return html`
    <section id="book" class="book" aria-label="The book">
      <p id="book-character" class="meta">Main character: ${book.character}</p>
      <nav class="page-list" aria-label="Pages">
        <ol id="page-list">
          ${book.pages.map(
            (entry) => html`
              <li data-state=${entry.picture ? 'ready' : 'waiting'}>
                <button type="button" class="page-link" aria-current=${entry.index === book.current ? 'page' : nothing} @click=${() => book.onGo(entry.index)}>
                  <span class="thumb">${pictureTemplate(entry, book.painting, 'thumb-img')}</span>
                  <span class="page-line">${entry.index + 1}. ${entry.outline || paragraphsOf(entry.text)[0] || '…'}</span>
                </button>
              </li>
            `,
          )}
        </ol>
      </nav>
      <article id="reader" class="reader" aria-labelledby="page-heading" data-page=${book.current}>
        <figure class="page-picture frame" data-state=${page.picture ? 'ready' : 'waiting'} aria-busy=${String(book.edit?.repaint != null)}>
          ${pictureTemplate(page, book.painting, 'page-img')}${book.edit?.repaint ? repaintTemplate(page.index, book.edit.repaint) : nothing}
        </figure>
        <h3 id="page-heading" tabindex="-1">Page ${book.current + 1} of ${total}</h3>
        <!-- .story-text keeps white-space: pre-wrap, so nothing but the paragraphs goes inside it. -->
        <div id="page-text" class="story-text" aria-live="polite" aria-busy=${String(book.writing === book.current)} ?hidden=${book.edit?.draft != null}>${paragraphsOf(page.text).map((paragraph) => html`<p>${paragraph}</p>`)}</div>
        ${book.edit ? editTemplate(page.index, book.edit) : nothing}
        <div class="reader-nav">
          <button type="button" id="prev-page" ?disabled=${book.current === 0} @click=${() => book.onGo(book.current - 1)}>← Previous</button>
          <button type="button" id="next-page" ?disabled=${book.current === total - 1} @click=${() => book.onGo(book.current + 1)}>Next →</button>
        </div>
      </article>
    </section>
  `;
};
