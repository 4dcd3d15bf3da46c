/**
 * The `extensions.code` values of this server's GraphQL errors that clients branch on. Shared by
 * the server (which sets them), the page and the CLI (which read them).
 */
export const ErrorCode = {
  /** Input the caller must fix; nothing was changed. */
  BAD_USER_INPUT: 'BAD_USER_INPUT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
