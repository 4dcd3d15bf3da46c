/**
 * Newest-first lists read page by page with a keyset: a row's place is its
 * exact creation time and its id, so rows saved between two page loads never
 * shift what comes after a place (as an offset would).
 */
export interface ListPosition {
  /** The row's `created_at` exactly as stored: ISO 8601 in UTC with microseconds, e.g. `2026-11-30T17:30:00.123456Z`. */
  createdAt: string;
  id: string;
}

/** One page of a newest-first list: up to `limit` rows after the position asked for, each with its own position. */
export interface KeysetPage<T> {
  items: { node: T; position: ListPosition }[];
  /** Whether more rows follow the last one. */
  hasMore: boolean;
  /** Rows in the whole list (every page), for the viewer. */
  totalCount: number;
}
