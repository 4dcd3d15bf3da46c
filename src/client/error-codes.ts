/**
 * The `extensions.code` values of this server's GraphQL errors that clients branch on. Shared by
 * the server (which sets them), the page and the CLI (which read them).
 */
export const ErrorCode = {
  /** Input the caller must fix; nothing was changed. */
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  /** No API key, or one the server does not know (AUTH_MODE=api-key). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A per-owner limit was reached; the message names it. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The work asked for is already under way: that page is being painted again, or the book is still being made. Nothing was changed. */
  CONFLICT: 'CONFLICT',
  /** Pictures were asked for but images are switched off on this server (IMAGE_BACKEND=none). Nothing was changed. */
  IMAGES_DISABLED: 'IMAGES_DISABLED',
  /** The request body is over the server's size limit (HTTP 413). */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** The request body is not valid JSON. */
  MALFORMED_JSON: 'MALFORMED_JSON',
  /** No such route, or (a book download) no such story. */
  NOT_FOUND: 'NOT_FOUND',
  /** A signed link (picture or book download) that has expired or is not valid. */
  FORBIDDEN: 'FORBIDDEN',
  /** Any other request the HTTP layer refused. */
  BAD_REQUEST: 'BAD_REQUEST',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
