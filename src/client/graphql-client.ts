import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';

/**
 * A small GraphQL-over-HTTP client for the typed documents in ./generated, shared
 * by the web page (browser fetch) and the CLI (Node fetch). No Node-only imports:
 * the page bundles this file.
 */

export interface GraphQLClientOptions {
  /** Where the server runs, e.g. `http://localhost:4000`; '' for the page's own origin. */
  baseUrl: string;
  fetch?: typeof fetch;
  /** The API key to send (AUTH_MODE=api-key), read at each request; none when it returns null. */
  apiKey?: () => string | null;
}

interface RequestOptions {
  /** Aborting it cancels the request: the promise rejects with `signal.reason` (never a ServerUnreachableError). */
  signal?: AbortSignal;
}

export interface GraphQLClient {
  /** The base URL as given, without a trailing slash. */
  readonly baseUrl: string;
  /** `…/graphql` over HTTP. */
  readonly endpoint: string;
  /**
   * Throws GraphQLRequestError (the server said no) or ServerUnreachableError (no answer);
   * once `options.signal` is aborted, rejects with its reason and never resolves.
   */
  request<T, V>(document: TypedDocumentNode<T, V>, variables?: V, options?: RequestOptions): Promise<T>;
  /** graphql-ws connectionParams carrying the API key, if any (read at each connection). */
  connectionParams(): Record<string, unknown>;
  /** An image `url` from the API (server-relative or absolute) made absolute against the server. */
  resolve(url: string): string;
}

interface ServerError {
  message: string;
  extensions?: { code?: unknown };
}

/** The server answered with GraphQL errors; `message` is the server's own (already in plain words). */
export class GraphQLRequestError extends Error {
  constructor(
    readonly errors: ServerError[],
    /** e.g. BAD_USER_INPUT; null when the server gave none. */
    readonly code: string | null,
  ) {
    super(errors.map((error) => error.message).join('; ') || 'The server answered with an error.');
    this.name = 'GraphQLRequestError';
  }
}

/** The server could not be reached, or answered something that is not GraphQL. */
export class ServerUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerUnreachableError';
  }
}

const printed = new WeakMap<object, string>();

/** The query text of a generated document (printed once, then cached). */
export function queryText(document: TypedDocumentNode<unknown, unknown> | DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document as DocumentNode);
    printed.set(document, text);
  }
  return text;
}

export function createGraphQLClient(options: GraphQLClientOptions): GraphQLClient {
  const apiKey = () => options.apiKey?.() ?? null;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const endpoint = `${baseUrl}/graphql`;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const at = baseUrl ? ` at ${baseUrl}` : '';

  return {
    baseUrl,
    endpoint,
    connectionParams() {
      const key = apiKey();
      return key ? { authorization: `Bearer ${key}` } : {};
    },
    resolve(url: string): string {
      if (/^[a-z][a-z0-9+.-]*:/i.test(url) || !baseUrl) return url;
      return `${baseUrl}${url.startsWith('/') ? '' : '/'}${url}`;
    },
    async request<T, V>(document: TypedDocumentNode<T, V>, variables?: V, { signal }: RequestOptions = {}): Promise<T> {
      const key = apiKey();
      let response: Response;
      try {
        response = await fetchImpl(endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            ...(key ? { authorization: `Bearer ${key}` } : {}),
          },
          body: JSON.stringify({ query: queryText(document as TypedDocumentNode<unknown, unknown>), variables: variables ?? {} }),
          signal,
        });
      } catch (error) {
        signal?.throwIfAborted();
        throw new ServerUnreachableError(`Cannot reach the Story Agent server${at}: check that it is running, then try again.`, { cause: error });
      }
      let body: { data?: T | null; errors?: ServerError[] };
      try {
        body = (await response.json()) as typeof body;
      } catch (error) {
        signal?.throwIfAborted();
        throw new ServerUnreachableError(`The server${at} answered HTTP ${response.status} with something that is not GraphQL.`, { cause: error });
      }
      // A body that arrived just before the abort is dropped too: an aborted request never answers.
      signal?.throwIfAborted();
      if (body.errors?.length) {
        const code = body.errors[0].extensions?.code;
        throw new GraphQLRequestError(body.errors, typeof code === 'string' ? code : null);
      }
      if (!body.data) throw new ServerUnreachableError(`The server${at} answered HTTP ${response.status} without data.`);
      return body.data;
    },
  };
}

/** Any error as a sentence for a person: the server's message when there is one. */
export function plainMessage(error: unknown): string {
  if (error instanceof GraphQLRequestError || error instanceof ServerUnreachableError) return error.message;
  if (Array.isArray(error)) {
    const messages = error.map((item: unknown) => (item && typeof item === 'object' && 'message' in item ? String(item.message) : '')).filter(Boolean);
    if (messages.length) return messages.join('; ');
  }
  if (error instanceof Error && error.message) return error.message;
  return 'Something went wrong; please try again.';
}
