import { CloseCode, createClient, type Client } from 'graphql-ws';
import { GenerationProgressDocument, type GenerationProgressSubscription, type GenerationStage, type GenerationStatus } from './generated/graphql.js';
import { queryText } from './graphql-client.js';

/**
 * Following one generation's progress over graphql-ws, shared by the page
 * (browser WebSocket) and the CLI (pass `ws`). A dropped connection is retried
 * with backoff; the server's first event on every (re)subscription is the
 * session's current state, flagged storyTextReset, so the story text is
 * replaced, not appended, then.
 */

export type ProgressEvent = GenerationProgressSubscription['generationProgress'];

const TERMINAL: ReadonlySet<GenerationStatus> = new Set<GenerationStatus>(['COMPLETED', 'FAILED', 'CANCELLED']);

export function isTerminal(status: GenerationStatus): boolean {
  return TERMINAL.has(status);
}

/** Everything a client shows about a running generation, built from its events. */
export interface ProgressState {
  sessionId: string;
  status: GenerationStatus;
  percent: number;
  /** The stage in words, for people. */
  stage: string | null;
  /** The stage as a code, for deciding (e.g. RETRYING); null before the first event. */
  stageCode: GenerationStage | null;
  /** The story as streamed so far (no title line). */
  text: string;
  errorMessage: string | null;
  warnings: string[];
  /** The warnings with their codes and pages, in the same order. */
  warningDetails: ProgressEvent['warningDetails'];
  storyId: string | null;
}

function initialProgressState(sessionId: string): ProgressState {
  return {
    sessionId,
    status: 'PENDING',
    percent: 0,
    stage: null,
    stageCode: null,
    text: '',
    errorMessage: null,
    warnings: [],
    warningDetails: [],
    storyId: null,
  };
}

/**
 * Folds one event into the state. `storyTextReset` marks an event whose delta
 * replaces the text so far: the first event of a (re)subscription, which
 * carries all of it, and a story started over after a server crash.
 */
function applyProgress(state: ProgressState, event: ProgressEvent): ProgressState {
  const delta = event.storyTextDelta ?? '';
  const text = event.storyTextReset ? delta : state.text + delta;
  return {
    sessionId: event.sessionId,
    status: event.status,
    // Never backwards, even across reconnects.
    percent: Math.max(state.percent, event.progressPercentage),
    stage: event.stage,
    stageCode: event.stageCode,
    text,
    errorMessage: event.errorMessage,
    warnings: [...event.warnings],
    warningDetails: event.warningDetails.map((warning) => ({ ...warning })),
    storyId: event.storyId ?? state.storyId,
  };
}

interface ConnectionLost {
  /** 1 for the first retry after a drop; reset by every event received. */
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface FollowProgressOptions {
  /** The WebSocket URL, e.g. `ws://localhost:4000/graphql`. */
  url: string;
  sessionId: string;
  /** The WebSocket class; the global one (browsers) when omitted. On Node 20 pass `ws`. */
  webSocketImpl?: unknown;
  /** graphql-ws connectionParams (the API key), read at each connection. */
  connectionParams?: () => Record<string, unknown>;
  /** A client from preconnect() to use for the first attempt (it is disposed with the follower). */
  client?: Client;
  onEvent(event: ProgressEvent, info: { state: ProgressState }): void;
  /** Called before each retry after a drop. */
  onConnectionLost?(info: ConnectionLost): void;
  /** Called on the first event after a drop. */
  onReconnected?(): void;
  /** Consecutive failed connections before giving up (default: never give up). */
  maxRetries?: number;
  /** Backoff before retry n (1-based); default 250 ms doubling to 5 s. */
  retryDelayMs?: (attempt: number) => number;
  /**
   * Aborting it stops following, as stop() does, except that `done` rejects with
   * `signal.reason`; no callback is called after the abort.
   */
  signal?: AbortSignal;
}

export interface ProgressFollower {
  /**
   * Resolves with the final state once a terminal status arrives (or with the
   * current state after stop()); rejects with ProgressStreamError when the
   * server refuses the subscription or the connection cannot be restored, and
   * with `signal.reason` when the signal is aborted.
   */
  done: Promise<ProgressState>;
  readonly state: ProgressState;
  stop(): void;
}

export class ProgressStreamError extends Error {
  constructor(
    message: string,
    /** True when the server itself refused (e.g. unknown session), false for a lost connection. */
    readonly refused: boolean,
  ) {
    super(message);
    this.name = 'ProgressStreamError';
  }
}

/** Close codes after which trying again cannot help (graphql-ws protocol errors). */
const FATAL_CLOSE_CODES = new Set<number>([
  CloseCode.BadResponse,
  CloseCode.InternalClientError,
  CloseCode.BadRequest,
  CloseCode.Unauthorized,
  CloseCode.Forbidden,
  CloseCode.SubprotocolNotAcceptable,
  CloseCode.SubscriberAlreadyExists,
  CloseCode.TooManyInitialisationRequests,
  CloseCode.InternalServerError,
]);

interface CloseLike {
  code: number;
  reason?: string;
}

function isCloseLike(value: unknown): value is CloseLike {
  return typeof value === 'object' && value !== null && 'code' in value && typeof (value as CloseLike).code === 'number';
}

function describeDrop(error: unknown): string {
  if (isCloseLike(error)) return `the connection closed (code ${error.code}${error.reason ? `: ${error.reason}` : ''})`;
  if (error instanceof Error && error.message) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string' && error.message) return error.message;
  return 'the connection failed';
}

function graphQLErrorMessages(errors: readonly unknown[]): string {
  return errors.map((error) => (typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error))).join('; ');
}

const defaultDelay = (attempt: number) => Math.min(5000, 250 * 2 ** (attempt - 1));

/**
 * Opens the WebSocket now (e.g. while startGeneration is on its way), so the
 * subscription can go out as soon as the session id is known. Hand the client to
 * followProgress({ client }), or dispose() it if no session comes.
 */
export function preconnect(url: string, webSocketImpl?: unknown, connectionParams?: () => Record<string, unknown>): Client {
  return createClient({ url, webSocketImpl, connectionParams, lazy: false, retryAttempts: 0, onNonLazyError: () => undefined });
}

export function followProgress(options: FollowProgressOptions): ProgressFollower {
  const maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY;
  const retryDelay = options.retryDelayMs ?? defaultDelay;
  let state = initialProgressState(options.sessionId);
  let client: Client | null = null;
  let unsubscribe: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;
  let dropped = false;
  let settled = false;
  let resolveDone!: (state: ProgressState) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<ProgressState>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });

  const release = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const [dispose, current] = [unsubscribe, client];
    unsubscribe = null;
    client = null;
    dispose?.();
    void current?.dispose();
  };

  const { signal } = options;
  const onAbort = () => finish(signal?.reason);

  const finish = (error?: unknown) => {
    if (settled) return;
    settled = true;
    signal?.removeEventListener('abort', onAbort);
    release();
    if (error !== undefined) rejectDone(error);
    else resolveDone(state);
  };

  const retry = (error: unknown) => {
    if (settled) return;
    release();
    failures += 1;
    dropped = true;
    if (failures > maxRetries) {
      finish(new ProgressStreamError(`Lost the connection to ${options.url} and could not get it back: ${describeDrop(error)}.`, false));
      return;
    }
    const delayMs = retryDelay(failures);
    options.onConnectionLost?.({ attempt: failures, delayMs, reason: describeDrop(error) });
    timer = setTimeout(connect, delayMs);
  };

  let adopted = options.client ?? null;

  function connect(): void {
    if (settled) return;
    timer = null;
    const current =
      adopted ??
      createClient({
        url: options.url,
        webSocketImpl: options.webSocketImpl,
        connectionParams: options.connectionParams,
        lazy: true,
        retryAttempts: 0,
        lazyCloseTimeout: 0,
      });
    adopted = null;
    client = current;
    unsubscribe = current.subscribe<GenerationProgressSubscription>(
      { query: queryText(GenerationProgressDocument), variables: { sessionId: options.sessionId } },
      {
        next: (result) => {
          if (settled || client !== current) return;
          if (result.errors?.length) return finish(new ProgressStreamError(graphQLErrorMessages(result.errors), true));
          const event = result.data?.generationProgress;
          if (!event) return;
          failures = 0;
          state = applyProgress(state, event);
          try {
            if (dropped) {
              dropped = false;
              options.onReconnected?.();
            }
            options.onEvent(event, { state });
          } catch (error) {
            return finish(error instanceof Error ? error : new Error(String(error)));
          }
          if (isTerminal(event.status)) finish();
        },
        error: (error: unknown) => {
          if (settled || client !== current) return;
          if (Array.isArray(error)) return finish(new ProgressStreamError(graphQLErrorMessages(error), true));
          if (isCloseLike(error) && FATAL_CLOSE_CODES.has(error.code)) {
            return finish(new ProgressStreamError(`The server at ${options.url} refused the progress stream: ${describeDrop(error)}.`, true));
          }
          retry(error);
        },
        complete: () => {
          if (settled || client !== current) return;
          if (isTerminal(state.status)) finish();
          else retry(new Error('the progress stream ended before the generation did'));
        },
      },
    );
  }

  if (signal?.aborted) {
    void adopted?.dispose();
    adopted = null;
    onAbort();
  } else {
    signal?.addEventListener('abort', onAbort, { once: true });
    connect();
  }
  return {
    done,
    get state() {
      return state;
    },
    stop: () => finish(),
  };
}
