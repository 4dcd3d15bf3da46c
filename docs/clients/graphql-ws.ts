import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * A graphql-ws client that rides out a server restart: it reconnects with
 * growing waits (up to 10 s, for about 3 minutes) and subscribes again; the
 * server's first event after that is the session's current state, with the
 * story so far (storyTextReset: true), so nothing is missed.
 */
export function createRetryingClient(url = 'ws://localhost:4000/graphql', apiKey?: string) {
  return createClient({
    url,
    webSocketImpl: WebSocket, // Node 20 has no global WebSocket; leave this out in a browser
    connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
    retryAttempts: 20,
    // Retry after any drop: a restart closes with 1001, a server still down refuses the connection.
    shouldRetry: () => true,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries) + Math.random() * 300)),
  });
}

/** Follows one generation to its end; resolves with the last event. */
export function followGeneration(client: ReturnType<typeof createClient>, sessionId: string, onEvent: (event: Progress) => void): Promise<Progress> {
  return new Promise((resolve, reject) => {
    let last: Progress | null = null;
    client.subscribe<{ generationProgress: Progress }>(
      {
        query: `subscription ($sessionId: ID!) {
          generationProgress(sessionId: $sessionId) { sessionId status stageCode stage progressPercentage storyTextDelta storyTextReset storyId }
        }`,
        variables: { sessionId },
      },
      {
        next: ({ data }) => {
          if (!data) return;
          last = data.generationProgress;
          onEvent(last);
        },
        error: reject,
        complete: () => (last ? resolve(last) : reject(new Error('the stream ended without an event'))),
      },
    );
  });
}

export interface Progress {
  sessionId: string;
  status: string;
  stageCode: string | null;
  stage: string | null;
  progressPercentage: number;
  storyTextDelta: string | null;
  storyTextReset: boolean;
  storyId: string | null;
}
