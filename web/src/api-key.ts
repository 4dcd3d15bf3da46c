import { ErrorCode } from '../../src/client/error-codes.js';
import { GraphQLRequestError, type GraphQLClient } from '../../src/client/graphql-client.js';

/**
 * The page's side of AUTH_MODE=api-key: the key lives in this browser's localStorage,
 * goes with every request (see createGraphQLClient's apiKey), and is asked for when the
 * server answers UNAUTHENTICATED: at first use, or after the key was revoked.
 */

const STORAGE_KEY = 'story-agent.api-key';

export function storedApiKey(): string | null {
  return localStorage.getItem(STORAGE_KEY);
}

let asking: Promise<string | null> | null = null;

/** Shows one dialog however many requests were refused at once; resolves with the key, or null if dismissed. */
function askForKey(rejected: boolean): Promise<string | null> {
  asking ??= new Promise<string | null>((resolve) => {
    const dialog = document.createElement('dialog');
    dialog.id = 'api-key-dialog';
    dialog.setAttribute('aria-labelledby', 'api-key-title');
    const form = document.createElement('form');
    form.method = 'dialog';
    const title = document.createElement('h2');
    title.id = 'api-key-title';
    title.textContent = 'This server needs an API key';
    const hint = document.createElement('p');
    hint.textContent = rejected
      ? 'The key saved in this browser was not accepted. Enter another one.'
      : 'Ask whoever runs it for one (npm run api-key -- create <name>). It is kept in this browser only.';
    const label = document.createElement('label');
    label.htmlFor = 'api-key-input';
    label.textContent = 'API key';
    const input = document.createElement('input');
    input.id = 'api-key-input';
    input.type = 'password';
    input.autocomplete = 'off';
    input.required = true;
    const save = document.createElement('button');
    save.type = 'submit';
    save.textContent = 'Save key';
    form.append(title, hint, label, input, save);
    dialog.append(form);
    document.body.append(dialog);
    dialog.addEventListener('close', () => {
      const key = input.value.trim() || null;
      if (key) localStorage.setItem(STORAGE_KEY, key);
      dialog.remove();
      asking = null;
      resolve(key);
    });
    dialog.showModal();
  });
  return asking;
}

/** The client, asking for a key and trying again whenever the server wants one. */
export function askingForKey(client: GraphQLClient): GraphQLClient {
  return {
    ...client,
    async request(document, variables, options) {
      for (;;) {
        try {
          return await client.request(document, variables, options);
        } catch (error) {
          if (!(error instanceof GraphQLRequestError && error.code === ErrorCode.UNAUTHENTICATED)) throw error;
          if (!(await askForKey(storedApiKey() !== null))) throw error;
        }
      }
    },
  };
}
