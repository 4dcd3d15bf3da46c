import { html, nothing, render } from 'lit-html';
import { StoryListDocument, type StorySummaryFieldsFragment } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { client } from '../api.js';
import { byId, formatDate } from '../dom.js';
import { routeHash } from '../routing.js';

/**
 * The list of past stories beside the main area, newest first, the story on
 * screen marked aria-current. It belongs to no view: it stays while views
 * come and go, and is loaded at start and after a story is made or deleted.
 */

const LIMIT = 50;
/** Which picture stands for a story in the list, best first. */
const THUMBNAIL_ORDER = ['COMBINED', 'BACKGROUND', 'CHARACTER'] as const;

let stories: readonly StorySummaryFieldsFragment[] = [];
/** False until the first answer: "no stories yet" is not said before it is known. */
let loaded = false;
let loadError: string | null = null;
let current: string | null = null;

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

function paint(): void {
  // Rendered after the static heading in index.html, which stays first.
  render(
    html`
      <ul id="history-list" class="history-list">
        ${stories.map(itemTemplate)}
      </ul>
      <p id="history-empty" class="hint" ?hidden=${!loadError && (!loaded || stories.length > 0)}>
        ${loadError ? `The list of stories could not be loaded: ${loadError}` : 'No stories yet: the ones you make appear here, newest first.'}
      </p>
    `,
    byId('history'),
  );
}

/** Reloads the list; a failure is said in place of the list (the stories shown so far stay). */
export async function refreshHistory(): Promise<void> {
  try {
    ({ stories } = await client.request(StoryListDocument, { limit: LIMIT, offset: 0 }));
    loaded = true;
    loadError = null;
  } catch (error) {
    loadError = plainMessage(error);
  }
  paint();
}

/** Marks the story now on screen (null: none). */
export function markCurrentStory(storyId: string | null): void {
  current = storyId;
  paint();
}
