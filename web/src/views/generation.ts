import { StoryDocument, type StoryFieldsFragment } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { followProgress, isTerminal, type ProgressState } from '../../../src/client/progress.js';
import { cancelGeneration, takePreconnected } from '../actions.js';
import { client, connectionParams, wsUrl } from '../api.js';
import { byId, notify, showAlert } from '../dom.js';
import { replaceRoute, type ViewContext } from '../routing.js';
import { PageEditor } from './page-editing.js';
import { bookOf, StreamedPages, turnPagesWithArrowKeys } from './book.js';
import { markCurrentStory, refreshHistory } from './history.js';
import { emptyStory, hiddenProgress, painter, savedStory, type Screen } from './screen.js';

/**
 * The live view of one generation (#/session/<id>): the progress bar and stage,
 * the story text as it is written, then the saved story with its pictures as
 * each one is painted. Everything it starts stops with the view's signal.
 */

/**
 * Runs `task` one call at a time: a call while one runs is kept (the latest
 * wins) and run next. close() drops what is kept and returns the run in flight,
 * so what comes after it is the last word. A failed run is dropped: the next
 * call tries again.
 */
function oneAtATime<T>(task: (arg: T) => Promise<void>): { run(arg: T): void; close(): Promise<void> } {
  let running: Promise<void> | null = null;
  let next: { arg: T } | null = null;
  let closed = false;
  const run = (arg: T): void => {
    if (closed) return;
    if (running) {
      next = { arg };
      return;
    }
    running = task(arg)
      .catch(() => undefined)
      .finally(() => {
        running = null;
        const queued = next;
        next = null;
        if (queued) run(queued.arg);
      });
  };
  return {
    run,
    close: () => {
      closed = true;
      next = null;
      return running ?? Promise.resolve();
    },
  };
}

/** What a progress event changes on screen (the saved story, once there is one, comes from loads instead). */
function showProgress(screen: Screen, state: ProgressState): void {
  screen.progress.status = state.status;
  screen.progress.percent = state.percent;
  screen.progress.stage = state.stage ?? 'Waiting in the queue';
  screen.progress.stageCode = state.stageCode;
  screen.warnings = state.warnings;
  if (!state.storyId && (state.text || state.status === 'GENERATING_STORY')) {
    screen.story.shown = true;
    screen.story.busy = state.status === 'GENERATING_STORY';
    screen.story.text = state.text;
  }
  if (state.status === 'GENERATING_IMAGES') screen.story.imagesShown = true;
}

export async function showGeneration(sessionId: string, { signal, focus }: ViewContext): Promise<void> {
  const paint = painter(signal);
  const screen: Screen = {
    progress: {
      ...hiddenProgress(),
      shown: true,
      heading: 'Writing your story',
      stage: 'Connecting…',
      cancel: { shown: true, disabled: false },
      onCancel: () => void cancel(),
    },
    warnings: [],
    story: emptyStory(),
  };
  paint(screen);
  if (focus) byId('progress-title').focus();

  // A book: the reader follows the page being written until the reader turns a page.
  const streamed = new StreamedPages();
  let saved: StoryFieldsFragment | null = null;
  let current = 0;
  let followWriting = true;
  let writingPage: number | null = null;
  let painting = true;
  /** Paint again and Edit text, once the book is finished. */
  let editor: PageEditor | null = null;
  const showBook = (complete: boolean) => {
    if (!saved) return;
    if (followWriting && writingPage !== null) current = writingPage;
    const edit = complete && editor ? editor.panel.bind(editor) : undefined;
    const book = bookOf(saved, { current, streamed, writing: complete ? null : writingPage, painting, onGo, edit });
    screen.story = savedStory(saved, { complete, book, edit: edit?.(0, saved.pages[0]?.text ?? saved.storyText) ?? null });
    paint(screen);
  };
  const onGo = (index: number) => {
    followWriting = false;
    current = index;
    showBook(screen.story.complete !== null);
    byId('page-heading').focus();
  };
  turnPagesWithArrowKeys(signal, () => screen.story.book);

  async function cancel(): Promise<void> {
    screen.progress.cancel.disabled = true;
    screen.progress.stage = 'Cancelling…';
    paint(screen);
    try {
      await cancelGeneration(sessionId);
      // The progress stream reports CANCELLED and ends; that updates the page.
    } catch (error) {
      showAlert(plainMessage(error));
      screen.progress.cancel.disabled = false;
      paint(screen);
    }
  }

  const loadStory = async (storyId: string): Promise<StoryFieldsFragment | null> => (await client.request(StoryDocument, { id: storyId }, { signal })).story;

  // Pictures land one by one: once the story is saved, reload it on each event, one request at a time.
  const refreshes = oneAtATime(async (storyId: string) => {
    const story = await loadStory(storyId);
    if (!story) return;
    saved = story;
    if (story.pages.length > 1) return showBook(false);
    screen.story = savedStory(story, { complete: false });
    paint(screen);
  });

  const follower = followProgress({
    url: wsUrl,
    connectionParams,
    sessionId,
    client: takePreconnected(),
    signal,
    onEvent: (event, { state }) => {
      streamed.add(event);
      if (event.storyTextDelta && event.pageIndex != null) writingPage = event.pageIndex;
      if (state.status === 'GENERATING_IMAGES') writingPage = null;
      showProgress(screen, state);
      // A book shows its pages, each with its own streamed text, not the one stream of text.
      if (screen.story.book && saved) showBook(false);
      else paint(screen);
      if (state.storyId && !isTerminal(state.status)) refreshes.run(state.storyId);
    },
    onConnectionLost: ({ delayMs }) => {
      screen.progress.connection = `The connection to the server was lost. Reconnecting in ${Math.ceil(delayMs / 1000)} s…`;
      paint(screen);
    },
    onReconnected: () => {
      screen.progress.connection = 'Reconnected.';
      paint(screen);
    },
  });

  let state: ProgressState;
  try {
    // Resolves at a terminal status: the view never calls stop(), it aborts.
    state = await follower.done;
  } catch (error) {
    signal.throwIfAborted();
    screen.progress.cancel.shown = false;
    screen.progress.connection = null;
    paint(screen);
    showAlert(plainMessage(error));
    return;
  }

  const lastReload = refreshes.close();
  screen.progress.cancel.shown = false;
  screen.progress.connection = null;
  screen.story.busy = false;
  if (state.status === 'COMPLETED' && state.storyId) screen.progress.heading = 'Your story is ready';
  paint(screen);
  // The final render must be the last one: no reload may land after it.
  await lastReload;
  signal.throwIfAborted();
  if (state.status === 'COMPLETED' && state.storyId) {
    let story: StoryFieldsFragment | null = null;
    try {
      story = await loadStory(state.storyId);
    } catch (error) {
      signal.throwIfAborted();
      showAlert(`The story was written but could not be loaded: ${plainMessage(error)}`);
    }
    if (story) {
      saved = story;
      painting = false;
      writingPage = null;
      // A finished book opens at its first page, unless the reader has turned to one.
      if (followWriting) current = 0;
      const storyId = story.id;
      editor = new PageEditor(
        storyId,
        signal,
        () => showBook(true),
        async () => {
          saved = (await loadStory(storyId)) ?? saved;
        },
      );
      // A book reads page by page; a one-page story the classic way. Both can be edited now.
      showBook(true);
      // The address now names the story, without showing it again.
      replaceRoute({ kind: 'story', id: story.id });
      markCurrentStory(story.id);
      notify(`“${story.title}” is ready.`);
    }
    void refreshHistory();
  } else if (state.status === 'FAILED') {
    screen.progress.heading = 'The story could not be written';
    screen.story.shown = false;
    paint(screen);
    showAlert(`The story could not be written. ${state.errorMessage ?? 'The server gave no reason.'}`);
  } else if (state.status === 'CANCELLED') {
    screen.progress.heading = 'Cancelled';
    screen.story.shown = Boolean(state.storyId);
    paint(screen);
    notify('The generation was cancelled.');
  }
}
