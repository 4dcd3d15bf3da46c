import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client, Sink } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import { StoryDocument } from '../../src/client/generated/graphql.js';
import { createGraphQLClient, ServerUnreachableError } from '../../src/client/graphql-client.js';
import { followProgress, type ProgressEvent } from '../../src/client/progress.js';
import { STAGE } from '../../src/services/progress/progress-plan.js';

/**
 * The shared client's AbortSignal support, which the page uses to drop
 * everything a view started when the reader moves on.
 */

const STORY_ID = '00000000-0000-4000-8000-000000000000';
const servers: http.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    // The stalled answers never end by themselves.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A GraphQL endpoint that sends its headers (or nothing) and then waits until released. */
async function stallingServer(mode: 'no-headers' | 'headers-only'): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests += 1;
    request.resume();
    if (mode === 'headers-only') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"data":');
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

describe('GraphQL requests with a signal', () => {
  it('reject with the abort reason while waiting for the answer, not with "cannot reach the server"', async () => {
    for (const mode of ['no-headers', 'headers-only'] as const) {
      const server = await stallingServer(mode);
      const client = createGraphQLClient({ baseUrl: server.url });
      const controller = new AbortController();
      const reason = new Error(`left the view (${mode})`);
      const request = client.request(StoryDocument, { id: STORY_ID }, { signal: controller.signal });
      await expect.poll(server.requests, { message: 'the request reached the server' }).toBe(1);
      controller.abort(reason);
      await expect(request).rejects.toBe(reason);
    }
  });

  it('send nothing when the signal is already aborted', async () => {
    const server = await stallingServer('no-headers');
    const client = createGraphQLClient({ baseUrl: server.url });
    const reason = new Error('already left');
    await expect(client.request(StoryDocument, { id: STORY_ID }, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.requests()).toBe(0);
  });

  it('still say in words that the server cannot be reached when nothing was aborted', async () => {
    const server = await stallingServer('no-headers');
    const url = server.url;
    await new Promise((resolve) => servers.pop()!.close(resolve));
    const client = createGraphQLClient({ baseUrl: url });
    const request = client.request(StoryDocument, { id: STORY_ID }, { signal: new AbortController().signal });
    await expect(request).rejects.toBeInstanceOf(ServerUnreachableError);
    await expect(request).rejects.toThrow(`Cannot reach the Story Agent server at ${url}`);
  });
});

/** A graphql-ws client that records what is asked of it; the test plays the server through `sink`. */
function recordingClient() {
  const calls = { subscribed: 0, unsubscribed: 0, disposed: 0 };
  let sink: Sink<{ data: { generationProgress: ProgressEvent } }> | null = null;
  const client = {
    subscribe(_payload: unknown, given: typeof sink) {
      calls.subscribed += 1;
      sink = given;
      return () => {
        calls.unsubscribed += 1;
      };
    },
    dispose() {
      calls.disposed += 1;
    },
  } as unknown as Client;
  const send = (event: Partial<ProgressEvent>) =>
    sink!.next({
      data: {
        generationProgress: {
          sessionId: 's1',
          status: 'GENERATING_STORY',
          progressPercentage: 10,
          stage: STAGE.writingStory.label,
          stageCode: STAGE.writingStory.code,
          storyTextDelta: null,
          storyTextReset: false,
          errorMessage: null,
          warnings: [],
          warningDetails: [],
          storyId: null,
          ...event,
        } as ProgressEvent,
      },
    });
  return { client, calls, send };
}

describe('following progress with a signal', () => {
  it('unsubscribes, closes the connection and rejects `done` with the reason on abort; later events reach no one', async () => {
    const { client, calls, send } = recordingClient();
    const controller = new AbortController();
    const seen: string[] = [];
    const follower = followProgress({
      url: 'ws://unused',
      sessionId: 's1',
      client,
      signal: controller.signal,
      onEvent: (event) => seen.push(event.storyTextDelta ?? ''),
    });
    send({ storyTextDelta: 'Once', storyTextReset: true });
    const reason = new Error('left the view');
    controller.abort(reason);

    await expect(follower.done).rejects.toBe(reason);
    expect(calls).toEqual({ subscribed: 1, unsubscribed: 1, disposed: 1 });
    send({ storyTextDelta: ' upon' });
    expect(seen).toEqual(['Once']);
    expect(follower.state.text).toBe('Once');
  });

  it('never subscribes when the signal is already aborted, and closes the preconnected client it was given', async () => {
    const { client, calls } = recordingClient();
    const reason = new Error('already left');
    const follower = followProgress({ url: 'ws://unused', sessionId: 's1', client, signal: AbortSignal.abort(reason), onEvent: () => undefined });
    await expect(follower.done).rejects.toBe(reason);
    expect(calls).toEqual({ subscribed: 0, unsubscribed: 0, disposed: 1 });
  });

  it('keeps stop() as it was: `done` resolves with the state so far, and a later abort changes nothing', async () => {
    const { client, calls, send } = recordingClient();
    const controller = new AbortController();
    const follower = followProgress({ url: 'ws://unused', sessionId: 's1', client, signal: controller.signal, onEvent: () => undefined });
    send({ storyTextDelta: 'Once', storyTextReset: true });
    follower.stop();
    controller.abort(new Error('too late'));
    await expect(follower.done).resolves.toMatchObject({ status: 'GENERATING_STORY', text: 'Once' });
    expect(calls).toEqual({ subscribed: 1, unsubscribed: 1, disposed: 1 });
  });
});
