import { StoryDocument, type StoryFieldsFragment } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { client } from '../api.js';
import { byId, showAlert } from '../dom.js';
import type { ViewContext } from '../routing.js';
import { bookOf, turnPagesWithArrowKeys } from './book.js';
import { PageEditor } from './page-editing.js';
import { emptyScreen, painter, savedStory, type Screen } from './screen.js';

/** One saved story (#/story/<id>): its text, its pictures, Download and Delete; a book's pages can be painted again and edited. */
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
  let loaded = story;
  let current = 0;
  const shown: Screen = { ...screen };
  const editor = new PageEditor(
    loaded.id,
    signal,
    () => show(current),
    async () => {
      const { story: again } = await client.request(StoryDocument, { id }, { signal });
      if (again) loaded = again;
    },
  );
  // A book reads page by page: the list, previous/next and the arrow keys turn them.
  const show = (page: number) => {
    current = page;
    const onGo = (index: number) => {
      show(index);
      byId('page-heading').focus();
    };
    const edit = (index: number, text: string) => editor.panel(index, text);
    const book = bookOf(loaded, { current, writing: null, painting: false, onGo, edit });
    shown.story = savedStory(loaded, { complete: true, book, edit: edit(0, loaded.pages[0]?.text ?? loaded.storyText) });
    paint(shown);
  };
  show(0);
  turnPagesWithArrowKeys(signal, () => shown.story.book);
  if (focus) byId('story-title').focus();
}
