/**
 * Whose stories and sessions a request sees. With AUTH_MODE=api-key, an owner's own
 * and nothing else; with AUTH_MODE=none there are no owners and the one user sees all.
 */
export type Viewer = { ownerId: string } | typeof SINGLE_USER;

export const SINGLE_USER = 'single-user' as const;

/** The owner recorded on what the viewer starts: null with AUTH_MODE=none. */
export function ownerIdOf(viewer: Viewer): string | null {
  return viewer === SINGLE_USER ? null : viewer.ownerId;
}

/** Whether the viewer may see a row recorded with this owner. */
export function canSee(viewer: Viewer, ownerId: string | null): boolean {
  return viewer === SINGLE_USER || viewer.ownerId === ownerId;
}
