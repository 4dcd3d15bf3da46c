import { StoryDocument, type StoryFieldsFragment } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { client } from '../api.js';
import { byId, showAlert } from '../dom.js';
import type { ViewContext } from '../routing.js';
import { bookOf, turnPagesWithArrowKeys } from './book.js';
import { emptyScreen, painter, savedStory, type Screen } from './screen.js';

/** One saved story (#/story/<id>): its text, its pictures, Download and Delete. */
export async function showStory(id: string, { signal, focus }: ViewContext): Promise<void> {
  const paint = painter(signal);
  const screen = emptyScreen();
  paint(screen);
  let story: StoryFieldsFragment | null;
  try {
    ({ story } = await client.request(StoryDocument, { id }, { signal }));
  } catch (error) {
    signal.throwIfAborted();
    showAlert(plainMessage(error));
    return;
  }
  if (!story) {
    showAlert('This story does not exist any more: it may have been deleted.');
    return;
  }
  const loaded = story;
  const shown: Screen = { ...screen };
  // A book reads page by page: the list, previous/next and the arrow keys turn them.
  const show = (current: number) => {
    const onGo = (index: number) => {
      show(index);
      byId('page-heading').focus();
    };
    shown.story = savedStory(loaded, { complete: true, book: bookOf(loaded, { current, writing: null, painting: false, onGo }) });
    paint(shown);
  };
  show(0);
  turnPagesWithArrowKeys(signal, () => shown.story.book);
  if (focus) byId('story-title').focus();
}
