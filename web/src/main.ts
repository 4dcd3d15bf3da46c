import './styles.css';
import { wireDeleteDialog } from './actions.js';
import { clearMessages } from './dom.js';
import { startRouter } from './routing.js';
import { clearPromptError, wireForm } from './views/form.js';
import { showGeneration } from './views/generation.js';
import { markCurrentStory, refreshHistory } from './views/history.js';
import { emptyScreen, painter } from './views/screen.js';
import { refreshSetup } from './views/setup.js';
import { showStory } from './views/story.js';

/**
 * The page: a form, a live view of one generation (progress, streamed text,
 * pictures as they land), one saved story, and the list of past stories.
 * index.html holds the static parts (form, messages, the history heading, the
 * delete dialog); the views paint the rest with lit-html.
 *
 *   routing.ts      hash routes, one AbortController per view
 *   views/          form, generation (live), story, history, screen (the main area's template), setup (the set-up panel)
 *   actions.ts      start, cancel, download, delete
 *   dom.ts, api.ts  shared DOM helpers and messages; the GraphQL client
 */

wireForm();
wireDeleteDialog();

startRouter(async (route, view) => {
  clearMessages();
  clearPromptError();
  markCurrentStory(route.kind === 'story' ? route.id : null);
  if (route.kind === 'session') await showGeneration(route.id, view);
  else if (route.kind === 'story') await showStory(route.id, view);
  // No route: the form alone.
  else painter(view.signal)(emptyScreen());
});
void refreshHistory();
void refreshSetup();
