import { ErrorCode } from '../../../src/client/error-codes.js';
import { GraphQLRequestError, plainMessage } from '../../../src/client/graphql-client.js';
import { startGeneration } from '../actions.js';
import { byId, clearMessages, showAlert } from '../dom.js';
import { routeHash } from '../routing.js';

/**
 * The form for a new story (static in index.html): Generate or Ctrl+Enter
 * starts a generation and goes to its live view; a prompt the server refuses
 * is explained next to the field.
 */

export function clearPromptError(): void {
  const error = byId('prompt-error');
  error.hidden = true;
  error.textContent = '';
  byId('prompt').removeAttribute('aria-invalid');
}

function showPromptError(message: string): void {
  const prompt = byId<HTMLTextAreaElement>('prompt');
  const error = byId('prompt-error');
  error.textContent = message;
  error.hidden = false;
  prompt.setAttribute('aria-invalid', 'true');
  prompt.focus();
}

export function wireForm(): void {
  const form = byId<HTMLFormElement>('generate-form');
  const prompt = byId<HTMLTextAreaElement>('prompt');
  const style = byId<HTMLSelectElement>('style');
  const pages = byId<HTMLSelectElement>('pages');
  const generate = byId<HTMLButtonElement>('generate');

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearMessages();
    clearPromptError();
    generate.disabled = true;
    try {
      const sessionId = await startGeneration({ prompt: prompt.value, style: style.value || null, pageCount: Number(pages.value) });
      location.hash = routeHash({ kind: 'session', id: sessionId });
    } catch (error) {
      if (error instanceof GraphQLRequestError && error.code === ErrorCode.BAD_USER_INPUT) showPromptError(error.message);
      else showAlert(plainMessage(error));
    } finally {
      generate.disabled = false;
    }
  });

  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  prompt.addEventListener('input', () => {
    if (prompt.getAttribute('aria-invalid')) clearPromptError();
  });

  // The skip link focuses the prompt itself: following "#prompt" would change the route.
  document.querySelector('.skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    prompt.focus();
  });
}
