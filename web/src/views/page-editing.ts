import { RegeneratePageImageDocument, UpdatePageTextDocument } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { followProgress } from '../../../src/client/progress.js';
import { client, connectionParams, wsUrl } from '../api.js';
import { byId, notify } from '../dom.js';

/**
 * Editing the pages of a saved book: "Paint again" (regeneratePageImage, whose
 * session's progress the page's picture shows until the new picture is there)
 * and "Edit text" (an inline editor; updatePageText), after which "Repaint to
 * match" paints the page again from its new text (redescribe). One editor per
 * view: its requests and progress streams stop with the view's signal.
 */

/** What the reader's page shows of its editing, and what its buttons do. */
export interface PageEditPanel {
  /** The inline editor's text while it is open; null when closed. */
  draft: string | null;
  saving: boolean;
  /** The text was just saved: "Repaint to match" is offered. */
  saved: boolean;
  /** While the page is painted again: its session's progress. */
  repaint: { percent: number; stage: string } | null;
  /** What last went wrong on this page, in words. */
  error: string | null;
  onPaintAgain(): void;
  onRepaintToMatch(): void;
  onEdit(): void;
  onInput(text: string): void;
  onSave(): void;
  onCancel(): void;
}

type PageState = Pick<PageEditPanel, 'draft' | 'saving' | 'saved' | 'repaint' | 'error'>;

export class PageEditor {
  private readonly pages = new Map<number, PageState>();

  constructor(
    private readonly storyId: string,
    private readonly signal: AbortSignal,
    /** Paints the view again (the state changed). */
    private readonly changed: () => void,
    /** Loads the story again (its text or pictures changed on the server). */
    private readonly reload: () => Promise<void>,
  ) {}

  /** The panel of one page; `text` is its saved text, which the editor opens with. */
  panel(index: number, text: string): PageEditPanel {
    const state = this.state(index);
    return {
      ...state,
      onPaintAgain: () => void this.paintAgain(index, false),
      onRepaintToMatch: () => void this.paintAgain(index, true),
      onEdit: () => {
        Object.assign(state, { draft: text, saved: false, error: null });
        this.changed();
        byId<HTMLTextAreaElement>('page-text-input').focus();
      },
      onInput: (draft) => {
        state.draft = draft;
      },
      onSave: () => void this.save(index),
      onCancel: () => {
        Object.assign(state, { draft: null, error: null });
        this.changed();
        byId('edit-text').focus();
      },
    };
  }

  private state(index: number): PageState {
    let state = this.pages.get(index);
    if (!state) {
      state = { draft: null, saving: false, saved: false, repaint: null, error: null };
      this.pages.set(index, state);
    }
    return state;
  }

  private async save(index: number): Promise<void> {
    const state = this.state(index);
    if (state.draft === null || state.saving) return;
    Object.assign(state, { saving: true, error: null });
    this.changed();
    try {
      await client.request(UpdatePageTextDocument, { storyId: this.storyId, pageIndex: index, text: state.draft }, { signal: this.signal });
      await this.reload();
      Object.assign(state, { draft: null, saved: true });
      notify(`Saved the text of page ${index + 1}.`);
    } catch (error) {
      state.error = `The text could not be saved: ${plainMessage(error)}`;
    } finally {
      state.saving = false;
    }
    // A view the reader has left is not painted again.
    if (this.signal.aborted) return;
    this.changed();
    byId(state.saved ? 'repaint-to-match' : 'page-text-input').focus();
  }

  private async paintAgain(index: number, redescribe: boolean): Promise<void> {
    const state = this.state(index);
    if (state.repaint) return;
    Object.assign(state, { saved: false, error: null, repaint: { percent: 0, stage: 'Asking the server…' } });
    this.changed();
    try {
      const { regeneratePageImage: session } = await client.request(
        RegeneratePageImageDocument,
        { storyId: this.storyId, pageIndex: index, redescribe },
        { signal: this.signal },
      );
      const follower = followProgress({
        url: wsUrl,
        connectionParams,
        sessionId: session.id,
        signal: this.signal,
        onEvent: (_event, { state: progress }) => {
          state.repaint = { percent: progress.percent, stage: progress.stage ?? '' };
          this.changed();
        },
      });
      const final = await follower.done;
      if (final.status === 'FAILED') state.error = `Page ${index + 1} could not be painted again: ${final.errorMessage ?? 'the server gave no reason.'}`;
      else if (final.status === 'CANCELLED') state.error = `Painting page ${index + 1} again was cancelled; it keeps its picture.`;
      else if (final.warnings.length > 0) state.error = final.warnings.join(' ');
      await this.reload();
      if (final.status === 'COMPLETED') notify(`Page ${index + 1} is painted again.`);
    } catch (error) {
      state.error = `Page ${index + 1} could not be painted again: ${plainMessage(error)}`;
    } finally {
      state.repaint = null;
    }
    if (!this.signal.aborted) this.changed();
  }
}
