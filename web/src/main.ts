import './styles.css';
import {
  CancelGenerationDocument,
  DeleteStoryDocument,
  StartGenerationDocument,
  StoryDocument,
  StoryListDocument,
  type ImageType,
  type StoryFieldsFragment,
  type StorySummaryFieldsFragment,
} from '../../src/client/generated/graphql.js';
import { createGraphQLClient, GraphQLRequestError, plainMessage } from '../../src/client/graphql-client.js';
import { followProgress, isTerminal, preconnect, type ProgressFollower, type ProgressState } from '../../src/client/progress.js';
import { exportStoryHtml, storyFileName, storyPictures } from '../../src/client/story-html.js';
import { askingForKey, storedApiKey } from './api-key.js';

/**
 * The page: a form, a live view of one generation (progress, streamed text,
 * pictures as they land), one saved story, and the list of past stories.
 * Plain DOM, no framework: the markup is in index.html, this wires it up.
 * Routes live in the hash so reloads and the back button work on any static host:
 *   #/session/<id>  follow a generation      #/story/<id>  read a story
 */

const client = askingForKey(createGraphQLClient({ baseUrl: '', apiKey: storedApiKey }));
const connectionParams = () => client.connectionParams();
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element as T;
}

const ui = {
  form: byId<HTMLFormElement>('generate-form'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  promptError: byId('prompt-error'),
  style: byId<HTMLSelectElement>('style'),
  generate: byId<HTMLButtonElement>('generate'),
  alert: byId('alert'),
  notice: byId('notice'),
  progressPanel: byId('progress-panel'),
  progressTitle: byId('progress-title'),
  progressBar: byId<HTMLProgressElement>('progress-bar'),
  percent: byId('percent'),
  stage: byId('stage'),
  connection: byId('connection'),
  cancel: byId<HTMLButtonElement>('cancel'),
  warnings: byId('warnings'),
  warningsList: byId('warnings-list'),
  story: byId('story'),
  storyTitle: byId('story-title'),
  storyMeta: byId('story-meta'),
  storyText: byId('story-text'),
  images: byId('images'),
  actions: byId('story-actions'),
  download: byId<HTMLButtonElement>('download'),
  delete: byId<HTMLButtonElement>('delete'),
  historyList: byId('history-list'),
  historyEmpty: byId('history-empty'),
  historyTitle: byId('history-title'),
  dialog: byId<HTMLDialogElement>('confirm-delete'),
  dialogText: byId('confirm-text'),
};

/** What the main area shows now. */
let follower: ProgressFollower | null = null;
/** A WebSocket opened while startGeneration is on its way; the next followed session takes it. */
let preconnected: ReturnType<typeof preconnect> | null = null;
let shownStory: StoryFieldsFragment | null = null;
/** Bumped on every navigation, so late answers for an earlier view are dropped. */
let view = 0;

// ---------------------------------------------------------------- messages

function showAlert(message: string): void {
  ui.alert.textContent = message;
  ui.alert.hidden = false;
}

function clearMessages(): void {
  ui.alert.hidden = true;
  ui.alert.textContent = '';
  ui.notice.textContent = '';
  ui.promptError.hidden = true;
  ui.promptError.textContent = '';
  ui.prompt.removeAttribute('aria-invalid');
}

function notify(message: string): void {
  ui.notice.textContent = message;
}

function showWarnings(warnings: readonly string[]): void {
  ui.warningsList.replaceChildren(
    ...warnings.map((warning) => {
      const item = document.createElement('li');
      item.textContent = warning;
      return item;
    }),
  );
  ui.warnings.hidden = warnings.length === 0;
}

// ---------------------------------------------------------------- the story view

function formatDate(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function resetStoryView(): void {
  shownStory = null;
  ui.story.hidden = true;
  ui.storyTitle.textContent = 'Your story';
  ui.storyMeta.textContent = '';
  ui.storyText.replaceChildren();
  renderedText = '';
  ui.storyText.setAttribute('aria-busy', 'false');
  ui.images.hidden = true;
  for (const slot of imageSlots()) setSlot(slot, null, '');
  ui.actions.hidden = true;
  showWarnings([]);
}

function imageSlots(): HTMLElement[] {
  return [...ui.images.querySelectorAll<HTMLElement>('.image-slot')];
}

function setSlot(slot: HTMLElement, url: string | null, alt: string, size?: { width: number; height: number }): void {
  const frame = slot.querySelector<HTMLElement>('.frame')!;
  const current = frame.querySelector('img');
  if (url) {
    if (current?.getAttribute('src') === url) return;
    const img = document.createElement('img');
    img.src = url;
    img.alt = alt;
    img.decoding = 'async';
    if (size) {
      img.width = size.width;
      img.height = size.height;
    }
    frame.replaceChildren(img);
    slot.dataset.state = 'ready';
  } else {
    const placeholder = document.createElement('span');
    placeholder.className = 'placeholder';
    placeholder.textContent = 'Painting…';
    frame.replaceChildren(placeholder);
    slot.dataset.state = 'waiting';
  }
}

/** The text on the page, as last rendered (one <p> per line of the story). */
let renderedText = '';

/** Streamed text: appended while it grows, replaced when a resumed stream starts over. */
function renderText(text: string): void {
  if (text === renderedText) return;
  if (!text.startsWith(renderedText)) {
    ui.storyText.replaceChildren();
    renderedText = '';
  }
  let paragraph = ui.storyText.lastElementChild as HTMLParagraphElement | null;
  text
    .slice(renderedText.length)
    .split('\n')
    .forEach((piece, index) => {
      if (!paragraph || (index > 0 && paragraph.textContent)) {
        paragraph = document.createElement('p');
        ui.storyText.append(paragraph);
      }
      const content = paragraph.textContent ? piece : piece.trimStart();
      if (content) paragraph.append(content);
    });
  renderedText = text;
  if (text.trim() && !performance.getEntriesByName('story-agent:first-text').length) performance.mark('story-agent:first-text');
}

function renderStory(story: StoryFieldsFragment, { final }: { final: boolean }): void {
  shownStory = story;
  ui.story.hidden = false;
  ui.storyTitle.textContent = story.title;
  ui.storyMeta.textContent = `From “${story.prompt}”, ${formatDate(story.createdAt)}`;
  renderText(story.storyText);
  ui.storyText.setAttribute('aria-busy', 'false');
  const pictures = new Map<ImageType, { url: string; alt: string; width: number; height: number }>(
    storyPictures(story).map(({ image, alt }) => [image.imageType, { url: image.url, alt, width: image.width, height: image.height }]),
  );
  // While painting, empty slots wait; once done, only the pictures that exist are shown.
  for (const slot of imageSlots()) {
    const picture = pictures.get(slot.dataset.type as ImageType);
    setSlot(slot, picture?.url ?? null, picture?.alt ?? '', picture);
    slot.hidden = final && !picture;
  }
  ui.images.hidden = final && pictures.size === 0;
  ui.actions.hidden = !final;
}

// ---------------------------------------------------------------- following a generation

function renderProgress(state: ProgressState): void {
  ui.progressPanel.dataset.status = state.status;
  ui.progressBar.value = state.percent;
  ui.percent.textContent = `${state.percent}%`;
  ui.stage.textContent = state.stage ?? 'Waiting in the queue';
  showWarnings(state.warnings);
  if (!state.storyId && (state.text || state.status === 'GENERATING_STORY')) {
    ui.story.hidden = false;
    ui.storyText.setAttribute('aria-busy', String(state.status === 'GENERATING_STORY'));
    renderText(state.text);
  }
  if (state.status === 'GENERATING_IMAGES') {
    ui.images.hidden = false;
    for (const slot of imageSlots()) slot.hidden = false;
  }
}

async function loadStory(id: string, forView: number, final: boolean): Promise<StoryFieldsFragment | null> {
  const { story } = await client.request(StoryDocument, { id });
  if (forView !== view) return null;
  if (story) renderStory(story, { final });
  return story;
}

function showSession(sessionId: string, focus: boolean): void {
  const forView = view;
  resetStoryView();
  ui.progressPanel.hidden = false;
  ui.progressTitle.textContent = 'Writing your story';
  ui.progressPanel.dataset.status = 'PENDING';
  ui.progressBar.value = 0;
  ui.percent.textContent = '0%';
  ui.stage.textContent = 'Connecting…';
  ui.connection.hidden = true;
  ui.cancel.hidden = false;
  ui.cancel.disabled = false;
  ui.cancel.dataset.sessionId = sessionId;
  if (focus) ui.progressTitle.focus();

  // Pictures land one by one: refetch the story on each event once it is saved, one request at a time.
  let fetching: Promise<unknown> | null = null;
  let again = false;
  // Set once the generation has ended: the final render must be the last one.
  let ended = false;
  const refreshStory = (storyId: string) => {
    if (ended) return;
    if (fetching) {
      again = true;
      return;
    }
    fetching = loadStory(storyId, forView, false)
      .catch(() => undefined)
      .finally(() => {
        fetching = null;
        if (again && forView === view && !ended) {
          again = false;
          refreshStory(storyId);
        }
      });
  };

  const client = preconnected ?? undefined;
  preconnected = null;
  follower = followProgress({
    url: wsUrl,
    connectionParams,
    sessionId,
    client,
    onEvent: (_event, { state }) => {
      if (forView !== view) return;
      renderProgress(state);
      if (state.storyId && !isTerminal(state.status)) refreshStory(state.storyId);
    },
    onConnectionLost: ({ delayMs }) => {
      if (forView !== view) return;
      ui.connection.hidden = false;
      ui.connection.textContent = `The connection to the server was lost. Reconnecting in ${Math.ceil(delayMs / 1000)} s…`;
    },
    onReconnected: () => {
      if (forView !== view) return;
      ui.connection.hidden = false;
      ui.connection.textContent = 'Reconnected.';
    },
  });

  follower.done.then(
    async (state) => {
      if (forView !== view || !isTerminal(state.status)) return;
      ended = true;
      ui.cancel.hidden = true;
      ui.storyText.setAttribute('aria-busy', 'false');
      if (state.status === 'COMPLETED' && state.storyId) {
        ui.progressTitle.textContent = 'Your story is ready';
        await fetching;
        const story = await loadStory(state.storyId, forView, true).catch((error: unknown) => {
          showAlert(`The story was written but could not be loaded: ${plainMessage(error)}`);
          return null;
        });
        if (story && forView === view) {
          // The address now names the story, without re-rendering it.
          history.replaceState(null, '', `#/story/${story.id}`);
          notify(`“${story.title}” is ready.`);
        }
        void refreshHistory();
      } else if (state.status === 'FAILED') {
        ui.progressTitle.textContent = 'The story could not be written';
        ui.story.hidden = true;
        showAlert(`The story could not be written. ${state.errorMessage ?? 'The server gave no reason.'}`);
      } else if (state.status === 'CANCELLED') {
        ui.progressTitle.textContent = 'Cancelled';
        ui.story.hidden = !state.storyId;
        notify('The generation was cancelled.');
      }
      ui.connection.hidden = true;
    },
    (error: unknown) => {
      if (forView !== view) return;
      ui.cancel.hidden = true;
      ui.connection.hidden = true;
      showAlert(plainMessage(error));
    },
  );
}

// ---------------------------------------------------------------- showing a saved story

async function showStory(id: string, focus: boolean): Promise<void> {
  const forView = view;
  resetStoryView();
  ui.progressPanel.hidden = true;
  try {
    const story = await loadStory(id, forView, true);
    if (forView !== view) return;
    if (!story) {
      showAlert('This story does not exist any more: it may have been deleted.');
      return;
    }
    if (focus) ui.storyTitle.focus();
  } catch (error) {
    if (forView === view) showAlert(plainMessage(error));
  }
}

// ---------------------------------------------------------------- the list of past stories

async function refreshHistory(): Promise<void> {
  try {
    const { stories } = await client.request(StoryListDocument, { limit: 50, offset: 0 });
    ui.historyList.replaceChildren(...stories.map(historyItem));
    ui.historyEmpty.hidden = stories.length > 0;
    markCurrentInHistory();
  } catch (error) {
    ui.historyEmpty.hidden = false;
    ui.historyEmpty.textContent = `The list of stories could not be loaded: ${plainMessage(error)}`;
  }
}

function historyItem(story: StorySummaryFieldsFragment): HTMLLIElement {
  const item = document.createElement('li');
  const link = document.createElement('a');
  link.href = `#/story/${story.id}`;
  link.dataset.storyId = story.id;
  const thumbnail = ['COMBINED', 'BACKGROUND', 'CHARACTER'].map((type) => story.images.find((image) => image.imageType === type)).find(Boolean);
  if (thumbnail) {
    const img = document.createElement('img');
    img.src = thumbnail.url;
    img.alt = '';
    img.width = 48;
    img.height = 48;
    img.loading = 'lazy';
    img.decoding = 'async';
    link.append(img);
  } else {
    const blank = document.createElement('span');
    blank.className = 'thumb-blank';
    blank.setAttribute('aria-hidden', 'true');
    link.append(blank);
  }
  const text = document.createElement('span');
  text.className = 'history-text';
  const title = document.createElement('span');
  title.className = 'history-title';
  title.textContent = story.title;
  const time = document.createElement('time');
  time.dateTime = story.createdAt;
  time.textContent = formatDate(story.createdAt);
  text.append(title, time);
  link.append(text);
  item.append(link);
  return item;
}

function markCurrentInHistory(): void {
  const target = parseRoute();
  const current = target.kind === 'story' ? target.id : shownStory?.id;
  for (const link of ui.historyList.querySelectorAll<HTMLAnchorElement>('a')) {
    if (link.dataset.storyId === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- routing

type Route = { kind: 'home' } | { kind: 'session'; id: string } | { kind: 'story'; id: string };

function parseRoute(): Route {
  const match = /^#\/(session|story)\/([^/?#]+)$/.exec(location.hash);
  if (!match) return { kind: 'home' };
  return { kind: match[1] as 'session' | 'story', id: decodeURIComponent(match[2]) };
}

function route(focus: boolean): void {
  view += 1;
  follower?.stop();
  follower = null;
  clearMessages();
  const target = parseRoute();
  if (target.kind === 'session') showSession(target.id, focus);
  else if (target.kind === 'story') void showStory(target.id, focus);
  else {
    resetStoryView();
    ui.progressPanel.hidden = true;
  }
  markCurrentInHistory();
}

// ---------------------------------------------------------------- actions

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  performance.clearMarks('story-agent:first-text');
  performance.mark('story-agent:submit');
  clearMessages();
  ui.generate.disabled = true;
  void preconnected?.dispose();
  preconnected = preconnect(wsUrl, undefined, connectionParams);
  try {
    const { startGeneration } = await client.request(StartGenerationDocument, {
      input: { prompt: ui.prompt.value, style: ui.style.value || null },
    });
    location.hash = `#/session/${startGeneration.id}`;
  } catch (error) {
    void preconnected?.dispose();
    preconnected = null;
    if (error instanceof GraphQLRequestError && error.code === 'BAD_USER_INPUT') {
      ui.promptError.textContent = error.message;
      ui.promptError.hidden = false;
      ui.prompt.setAttribute('aria-invalid', 'true');
      ui.prompt.focus();
    } else {
      showAlert(plainMessage(error));
    }
  } finally {
    ui.generate.disabled = false;
  }
});

ui.prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});

ui.prompt.addEventListener('input', () => {
  if (ui.prompt.getAttribute('aria-invalid')) {
    ui.prompt.removeAttribute('aria-invalid');
    ui.promptError.hidden = true;
  }
});

ui.cancel.addEventListener('click', async () => {
  const sessionId = ui.cancel.dataset.sessionId;
  if (!sessionId) return;
  ui.cancel.disabled = true;
  ui.stage.textContent = 'Cancelling…';
  try {
    await client.request(CancelGenerationDocument, { id: sessionId });
    // The progress stream reports CANCELLED and ends; that updates the page.
  } catch (error) {
    showAlert(plainMessage(error));
    ui.cancel.disabled = false;
  }
});

ui.download.addEventListener('click', async () => {
  const story = shownStory;
  if (!story) return;
  const label = ui.download.textContent;
  ui.download.disabled = true;
  ui.download.textContent = 'Preparing…';
  try {
    const { html, missing } = await exportStoryHtml(story, { resolve: (url) => url });
    if (missing.length) showAlert(missing.join(' '));
    const url = URL.createObjectURL(new Blob([html], { type: 'text/html;charset=utf-8' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = storyFileName(story, 'html');
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    notify(`Downloaded “${story.title}” as ${link.download}.`);
  } catch (error) {
    showAlert(`The story could not be downloaded: ${plainMessage(error)}`);
  } finally {
    ui.download.disabled = false;
    ui.download.textContent = label;
  }
});

ui.delete.addEventListener('click', () => {
  if (!shownStory) return;
  ui.dialogText.textContent = `“${shownStory.title}” and its pictures will be deleted. This cannot be undone.`;
  ui.dialog.returnValue = '';
  ui.dialog.showModal();
});

ui.dialog.addEventListener('close', async () => {
  const story = shownStory;
  if (ui.dialog.returnValue !== 'delete' || !story) return;
  try {
    await client.request(DeleteStoryDocument, { id: story.id });
    if (location.hash !== '#/') history.pushState(null, '', '#/');
    route(false);
    notify(`Deleted “${story.title}”.`);
    await refreshHistory();
    ui.historyTitle.focus();
  } catch (error) {
    showAlert(`The story could not be deleted: ${plainMessage(error)}`);
  }
});

// The skip link focuses the prompt itself: following "#prompt" would change the route.
document.querySelector('.skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  ui.prompt.focus();
});

window.addEventListener('hashchange', () => route(true));

route(false);
void refreshHistory();
