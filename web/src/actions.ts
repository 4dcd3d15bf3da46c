import type { Client } from 'graphql-ws';
import { CancelGenerationDocument, DeleteStoryDocument, StartGenerationDocument, type StoryFieldsFragment } from '../../src/client/generated/graphql.js';
import { plainMessage } from '../../src/client/graphql-client.js';
import { preconnect } from '../../src/client/progress.js';
import { client, connectionParams, wsUrl } from './api.js';
import { byId, notify, showAlert } from './dom.js';
import { HOME, navigate } from './routing.js';
import { refreshHistory } from './views/history.js';

/**
 * What the reader can do: start, cancel and delete (downloads are plain links to the story's exportUrl). These outlive the
 * view they were started from (a deletion finishes even if the reader has
 * moved on), so they take no view signal.
 */

/** A WebSocket opened while startGeneration is on its way; the view that follows the new session takes it. */
let preconnected: Client | null = null;

/** The preconnected WebSocket, once: the caller owns it from now on. */
export function takePreconnected(): Client | undefined {
  const taken = preconnected ?? undefined;
  preconnected = null;
  return taken;
}

function dropPreconnected(): void {
  void preconnected?.dispose();
  preconnected = null;
}

/**
 * Starts a generation and returns its session id. The progress WebSocket is
 * opened at the same time, so the subscription can go out the moment the id
 * is known. Throws what the client throws (GraphQLRequestError with
 * BAD_USER_INPUT for a prompt the server refuses).
 */
export async function startGeneration(input: { prompt: string; style: string | null; pageCount: number }): Promise<string> {
  dropPreconnected();
  preconnected = preconnect(wsUrl, undefined, connectionParams);
  try {
    const { startGeneration: session } = await client.request(StartGenerationDocument, { input });
    return session.id;
  } catch (error) {
    dropPreconnected();
    throw error;
  }
}

/** Asks the server to cancel; the progress stream then reports CANCELLED. */
export async function cancelGeneration(sessionId: string): Promise<void> {
  await client.request(CancelGenerationDocument, { id: sessionId });
}

/** The value of the dialog's Delete button in index.html. */
const DELETE_ANSWER = 'delete';

/** The story the confirmation dialog asks about. */
let toDelete: StoryFieldsFragment | null = null;

/** Asks whether to delete the story (the dialog in index.html); wireDeleteDialog() acts on the answer. */
export function confirmDelete(story: StoryFieldsFragment): void {
  const dialog = byId<HTMLDialogElement>('confirm-delete');
  toDelete = story;
  byId('confirm-text').textContent = `“${story.title}” and its pictures will be deleted. This cannot be undone.`;
  dialog.returnValue = '';
  dialog.showModal();
}

async function deleteStory(story: StoryFieldsFragment): Promise<void> {
  try {
    await client.request(DeleteStoryDocument, { id: story.id });
    navigate(HOME, { focus: false });
    notify(`Deleted “${story.title}”.`);
    await refreshHistory();
    byId('history-title').focus();
  } catch (error) {
    showAlert(`The story could not be deleted: ${plainMessage(error)}`);
  }
}

/** Deletes the story asked about when the dialog closes with "Delete" (Escape or "Keep it" keep it). */
export function wireDeleteDialog(): void {
  const dialog = byId<HTMLDialogElement>('confirm-delete');
  dialog.addEventListener('close', () => {
    const story = toDelete;
    toDelete = null;
    if (dialog.returnValue === DELETE_ANSWER && story) void deleteStory(story);
  });
}
