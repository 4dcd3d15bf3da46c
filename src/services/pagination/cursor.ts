import type { KeysetPage, ListPosition } from '../../ports/keyset.js';
import { InvalidInputError } from '../errors.js';

/** Which list a cursor belongs to: a story cursor is no place in the list of sessions. */
export type CursorKind = 'story' | 'session';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What the database adapter writes: UTC, microseconds. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * An opaque cursor for a place in a newest-first list: base64url of
 * `["<kind>", "<created_at, ISO 8601 with microseconds>", "<id>"]`. Clients
 * pass it back as they got it; its shape may change.
 */
export function encodeCursor(kind: CursorKind, position: ListPosition): string {
  return Buffer.from(JSON.stringify([kind, position.createdAt, position.id])).toString('base64url');
}

/**
 * The place a cursor names. Throws InvalidInputError (BAD_USER_INPUT) for
 * anything encodeCursor did not make for this kind of list.
 */
export function decodeCursor(kind: CursorKind, cursor: string): ListPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = null;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    parsed[0] !== kind ||
    typeof parsed[1] !== 'string' ||
    !TIMESTAMP.test(parsed[1]) ||
    Number.isNaN(Date.parse(parsed[1])) ||
    typeof parsed[2] !== 'string' ||
    !UUID.test(parsed[2])
  ) {
    throw new InvalidInputError(`"${cursor.slice(0, 100)}" is not a cursor of this list: pass back an endCursor or an edge's cursor as it was given.`);
  }
  return { createdAt: parsed[1], id: parsed[2].toLowerCase() };
}

const MAX_PAGE_SIZE = 100;

/** Checks `first` (1..100); throws InvalidInputError otherwise. */
export function requirePageSize(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) throw new InvalidInputError(`first must be between 1 and ${MAX_PAGE_SIZE}.`);
  return first;
}

/** One page of a list as clients read it (the shape of a Relay connection, without GraphQL). */
export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  hasNextPage: boolean;
  /** The last edge's cursor: pass it as `after` for the next page; null on an empty page. */
  endCursor: string | null;
  totalCount: number;
}

/** A keyset page with a cursor on every row. */
export function toConnection<T>(kind: CursorKind, page: KeysetPage<T>): Connection<T> {
  const edges = page.items.map(({ node, position }) => ({ cursor: encodeCursor(kind, position), node }));
  return { edges, hasNextPage: page.hasMore, endCursor: edges.at(-1)?.cursor ?? null, totalCount: page.totalCount };
}
