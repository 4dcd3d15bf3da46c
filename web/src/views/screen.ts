import { html, nothing, render } from 'lit-html';
import type { GenerationStatus, ImageType, StoryFieldsFragment } from '../../../src/client/generated/graphql.js';
import { storyPictures } from '../../../src/client/story-html.js';
import { confirmDelete } from '../actions.js';
import { byId, formatDate } from '../dom.js';
import { bookTemplate, editTemplate, repaintTemplate, type BookPanel } from './book.js';
import type { PageEditPanel } from './page-editing.js';

/**
 * The main area below the form: the progress panel, the warnings and the story
 * (text, pictures, Download and Delete). The generation view and the story view
 * both describe it as a Screen and paint it here; lit-html turns each paint into
 * the few DOM changes it needs (a picture already shown is not reloaded, text
 * that grew only grows), and every element keeps its identity from one paint and
 * one view to the next, so focus and live regions behave.
 */

interface ProgressPanel {
  shown: boolean;
  heading: string;
  status: GenerationStatus;
  /** 0–100. */
  percent: number;
  stage: string;
  /** The stage's code (GenerationStage), for styling: a retry is shown as a warning. */
  stageCode: string | null;
  /** About a dropped WebSocket; null when there is nothing to say. */
  connection: string | null;
  cancel: { shown: boolean; disabled: boolean };
  onCancel?: () => void;
}

interface Picture {
  url: string;
  alt: string;
  width: number;
  height: number;
}

interface StoryPanel {
  shown: boolean;
  title: string;
  meta: string;
  /** The story as written so far, one paragraph a line. */
  text: string;
  /** True while the text is still being written (aria-busy, and a cursor after it). */
  busy: boolean;
  imagesShown: boolean;
  pictures: ReadonlyMap<ImageType, Picture>;
  /** The saved story once it is complete: only its pictures are shown, with Download and Delete. */
  complete: StoryFieldsFragment | null;
  /** A book of several pages: shown page by page instead of the text and the three pictures. */
  book: BookPanel | null;
  /** A finished one-page story: Paint again and Edit text under its text (a book has them in its reader). */
  edit: PageEditPanel | null;
}

export interface Screen {
  progress: ProgressPanel;
  warnings: readonly string[];
  story: StoryPanel;
}

export function hiddenProgress(): ProgressPanel {
  return { shown: false, heading: '', status: 'PENDING', percent: 0, stage: '', stageCode: null, connection: null, cancel: { shown: false, disabled: false } };
}

export function emptyStory(): StoryPanel {
  return {
    shown: false,
    title: 'Your story',
    meta: '',
    text: '',
    busy: false,
    imagesShown: false,
    pictures: new Map(),
    complete: null,
    book: null,
    edit: null,
  };
}

export function emptyScreen(): Screen {
  return { progress: hiddenProgress(), warnings: [], story: emptyStory() };
}

/**
 * A saved story; `complete` once its generation has ended, when missing pictures are left out rather than awaited. `book`: its pages, for a book.
 * `edit`: page 0's editing, shown for a one-page story (a book's reader has its own).
 */
export function savedStory(
  story: StoryFieldsFragment,
  { complete, book = null, edit = null }: { complete: boolean; book?: BookPanel | null; edit?: PageEditPanel | null },
): StoryPanel {
  const pictures = new Map<ImageType, Picture>(
    storyPictures(story).map(({ image, alt }) => [image.imageType, { url: image.url, alt, width: image.width, height: image.height }]),
  );
  return {
    shown: true,
    title: story.title,
    meta: `From “${story.prompt}”, ${formatDate(story.createdAt)}`,
    text: story.storyText,
    busy: false,
    imagesShown: !complete || pictures.size > 0,
    pictures,
    complete: complete ? story : null,
    book,
    edit: book ? null : edit,
  };
}

/**
 * Paragraphs as the page shows them: one per non-blank line, leading spaces
 * dropped. A prefix of the text gives a prefix of the paragraphs (the last one
 * perhaps shorter), so streamed text only ever grows on screen.
 */
function textParagraphs(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trimStart())
    .filter(Boolean);
}

const SLOTS: readonly { type: ImageType; caption: string; className: string }[] = [
  { type: 'COMBINED', caption: 'Together', className: 'image-slot combined' },
  { type: 'CHARACTER', caption: 'The character', className: 'image-slot' },
  { type: 'BACKGROUND', caption: 'The setting', className: 'image-slot' },
];

const progressTemplate = (progress: ProgressPanel) => html`
  <section id="progress-panel" class="card progress-panel" aria-labelledby="progress-title" data-status=${progress.status} ?hidden=${!progress.shown}>
    <h2 id="progress-title" tabindex="-1">${progress.heading}</h2>
    <div class="progress-row">
      <progress id="progress-bar" max="100" .value=${progress.percent} aria-labelledby="progress-title" aria-describedby="stage"></progress>
      <span id="percent" aria-hidden="true">${progress.percent}%</span>
    </div>
    <p id="stage" class="stage" role="status" aria-live="polite" data-stage=${progress.stageCode ?? nothing}>${progress.stage}</p>
    <p id="connection" class="connection" role="status" aria-live="polite" ?hidden=${!progress.connection}>${progress.connection ?? ''}</p>
    <button type="button" id="cancel" ?hidden=${!progress.cancel.shown} ?disabled=${progress.cancel.disabled} @click=${progress.onCancel ?? nothing}>Cancel</button>
  </section>
`;

const warningsTemplate = (warnings: readonly string[]) => html`
  <section id="warnings" class="warnings" aria-labelledby="warnings-title" ?hidden=${warnings.length === 0}>
    <h2 id="warnings-title">Not everything worked</h2>
    <ul id="warnings-list">
      ${warnings.map((warning) => html`<li>${warning}</li>`)}
    </ul>
  </section>
`;

const slotTemplate = (slot: (typeof SLOTS)[number], story: StoryPanel) => {
  const picture = story.pictures.get(slot.type);
  // Painting the page again shows its progress on the combined picture (the setting changes with it; the character stays).
  const repainting = story.edit?.repaint != null && slot.type === 'COMBINED';
  return html`
    <figure class=${slot.className} data-state=${picture ? 'ready' : 'waiting'} ?hidden=${story.complete !== null && !picture}>
      <div class="frame" aria-busy=${String(repainting)}>
        ${
          picture
            ? html`<img src=${picture.url} alt=${picture.alt} decoding="async" width=${picture.width} height=${picture.height} />`
            : html`<span class="placeholder">Painting…</span>`
        }${repainting && story.edit?.repaint ? repaintTemplate(0, story.edit.repaint) : nothing}
      </div>
      <figcaption>${slot.caption}</figcaption>
    </figure>
  `;
};

const actionsTemplate = (story: StoryFieldsFragment) => html`
  <span class="downloads" role="group" aria-label="Download">
    Download:
    <a id="download-html" class="button" href=${story.htmlUrl} download aria-label="Download as HTML">HTML</a>
    <a id="download-epub" class="button" href=${story.epubUrl} download aria-label="Download as EPUB">EPUB</a>
    <a id="download-pdf" class="button" href=${story.pdfUrl} download aria-label="Download as PDF">PDF</a>
  </span>
  <button type="button" id="delete" class="danger" @click=${() => confirmDelete(story)}>Delete…</button>
`;

// #story-text keeps white-space: pre-wrap, so nothing but the paragraphs goes inside it.
const storyTemplate = (story: StoryPanel) => html`
  <article id="story" class="card story" aria-labelledby="story-title" ?hidden=${!story.shown}>
    <h2 id="story-title" tabindex="-1">${story.title}</h2>
    <p id="story-meta" class="meta">${story.meta}</p>
    <div id="story-text" class="story-text" aria-live="polite" aria-busy=${String(story.busy)} ?hidden=${story.book !== null || story.edit?.draft != null}>${story.book ? nothing : textParagraphs(story.text).map((paragraph) => html`<p>${paragraph}</p>`)}</div>
    ${story.edit ? editTemplate(0, story.edit) : nothing}
    <div id="images" class="images" ?hidden=${!story.imagesShown || story.book !== null}>${story.book ? nothing : SLOTS.map((slot) => slotTemplate(slot, story))}</div>
    ${bookTemplate(story.book)}
    <div id="story-actions" class="actions" ?hidden=${!story.complete}>${story.complete ? actionsTemplate(story.complete) : nothing}</div>
  </article>
`;

/**
 * The painter of one view: paints the screen into <main>, after the form and
 * the messages, until the view's signal is aborted, then never again, so a late
 * answer for a view the reader has left cannot overwrite the one now shown.
 */
export function painter(signal: AbortSignal): (screen: Screen) => void {
  return (screen) => {
    if (signal.aborted) return;
    render(html`${progressTemplate(screen.progress)}${warningsTemplate(screen.warnings)}${storyTemplate(screen.story)}`, byId('main'));
  };
}
