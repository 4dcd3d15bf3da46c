import { html, nothing, render } from 'lit-html';
import {
  GenerationSessionsDocument,
  type GenerationStatus,
  type SessionFieldsFragment,
  StoryListPageDocument,
  type StorySummaryFieldsFragment,
} from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { client } from '../api.js';
import { byId, formatDate } from '../dom.js';
import { routeHash } from '../routing.js';

/**
 * The list of past stories beside the main area, newest first, the story on
 * screen marked aria-current, and above it the generations still running (a
 * book whose tab was closed is found there). It belongs to no view: it stays
 * while views come and go, and is loaded at start and after a story is made or
 * deleted. Older stories load page by page by cursor as the list's end scrolls
 * into sight, or with the "Load more" button (keyboard, or no IntersectionObserver).
 */

const PAGE_SIZE = 20;
const RUNNING: GenerationStatus[] = ['PENDING', 'GENERATING_STORY', 'GENERATING_IMAGES'];
/** Which picture stands for a story in the list, best first. */
const THUMBNAIL_ORDER = ['COMBINED', 'BACKGROUND', 'CHARACTER'] as const;

let stories: readonly StorySummaryFieldsFragment[] = [];
let running: readonly SessionFieldsFragment[] = [];
let totalCount = 0;
/** Where the next page starts; null when there is none. */
let nextCursor: string | null = null;
let loadingMore: Promise<void> | null = null;
/** False until the first answer: "no stories yet" is not said before it is known. */
let loaded = false;
let loadError: string | null = null;
let current: string | null = null;
/** Bumped by every reload, so a page asked for before it is not appended after it. */
let generation = 0;

const itemTemplate = (story: StorySummaryFieldsFragment) => {
  const thumbnail = THUMBNAIL_ORDER.map((type) => story.images.find((image) => image.imageType === type)).find(Boolean);
  return html`
    <li>
      <a href=${routeHash({ kind: 'story', id: story.id })} aria-current=${story.id === current ? 'page' : nothing}>
        ${
          thumbnail
            ? html`<img src=${thumbnail.url} alt="" width="48" height="48" loading="lazy" decoding="async" />`
            : html`<span class="thumb-blank" aria-hidden="true"></span>`
        }
        <span class="history-text">
          <span class="history-title">${story.title}</span>
          <time datetime=${story.createdAt}>${formatDate(story.createdAt)}</time>
        </span>
      </a>
    </li>
  `;
};

const runningTemplate = (session: SessionFieldsFragment) => html`
  <li>
    <a href=${routeHash({ kind: 'session', id: session.id })} data-stage=${session.stageCode ?? nothing}>
      <span class="thumb-blank" aria-hidden="true"></span>
      <span class="history-text">
        <span class="history-title">${session.prompt}</span>
        <span class="history-stage">${session.progressPercentage} % · ${session.stage ?? 'Waiting in the queue'}</span>
      </span>
    </a>
  </li>
`;

function paint(): void {
  // Rendered after the static heading in index.html, which stays first.
  render(
    html`
      <section id="history-running" class="history-running" aria-labelledby="history-running-title" ?hidden=${running.length === 0}>
        <h3 id="history-running-title">Being made</h3>
        <ul class="history-list">
          ${running.map(runningTemplate)}
        </ul>
      </section>
      <ul id="history-list" class="history-list" aria-describedby="history-count">
        ${stories.map(itemTemplate)}
      </ul>
      <p id="history-count" class="hint" ?hidden=${!loaded || stories.length === 0}>Showing ${stories.length} of ${totalCount}</p>
      <button id="history-more" type="button" ?hidden=${nextCursor === null} ?disabled=${loadingMore !== null} @click=${() => void loadMore()}>
        ${loadingMore ? 'Loading…' : 'Load more'}
      </button>
      <p id="history-empty" class="hint" ?hidden=${!loadError && (!loaded || stories.length > 0)}>
        ${loadError ? `The list of stories could not be loaded: ${loadError}` : 'No stories yet: the ones you make appear here, newest first.'}
      </p>
    `,
    byId('history'),
  );
  watchListEnd();
}

let observer: IntersectionObserver | null = null;

/** Loads the next page once the "Load more" button scrolls into sight (where the browser can tell). */
function watchListEnd(): void {
  if (typeof IntersectionObserver === 'undefined') return;
  observer ??= new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && nextCursor !== null) void loadMore();
  });
  observer.disconnect();
  const button = document.getElementById('history-more');
  if (button && nextCursor !== null) observer.observe(button);
}

/** Reloads the first page and the running generations; a failure is said in place of the list (the stories shown so far stay). */
export async function refreshHistory(): Promise<void> {
  const asked = ++generation;
  try {
    const [{ storyConnection }, { generationSessions }] = await Promise.all([
      client.request(StoryListPageDocument, { first: PAGE_SIZE }),
      client.request(GenerationSessionsDocument, { status: RUNNING, first: 10 }),
    ]);
    if (asked !== generation) return;
    stories = storyConnection.edges.map((edge) => edge.node);
    totalCount = storyConnection.totalCount;
    nextCursor = storyConnection.pageInfo.hasNextPage ? (storyConnection.pageInfo.endCursor ?? null) : null;
    running = generationSessions.edges.map((edge) => edge.node);
    loaded = true;
    loadError = null;
  } catch (error) {
    loadError = plainMessage(error);
  }
  paint();
}

/** Appends the next page of older stories; one request at a time. */
function loadMore(): Promise<void> {
  if (loadingMore || nextCursor === null) return loadingMore ?? Promise.resolve();
  const asked = generation;
  loadingMore = (async () => {
    try {
      const { storyConnection } = await client.request(StoryListPageDocument, { first: PAGE_SIZE, after: nextCursor });
      if (asked !== generation) return;
      const shown = new Set(stories.map((story) => story.id));
      stories = [...stories, ...storyConnection.edges.map((edge) => edge.node).filter((story) => !shown.has(story.id))];
      totalCount = storyConnection.totalCount;
      nextCursor = storyConnection.pageInfo.hasNextPage ? (storyConnection.pageInfo.endCursor ?? null) : null;
      loadError = null;
    } catch (error) {
      loadError = plainMessage(error);
    } finally {
      loadingMore = null;
      paint();
    }
  })();
  paint();
  return loadingMore;
}

/** Marks the story now on screen (null: none). */
export function markCurrentStory(storyId: string | null): void {
  current = storyId;
  paint();
}
