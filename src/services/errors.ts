/** Input a caller must fix; the GraphQL layer reports it as BAD_USER_INPUT. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** Why a job's signal was aborted: the user cancelled the generation. */
export class GenerationCancelled extends Error {
  override name = 'GenerationCancelled';
  constructor() {
    super('Generation cancelled');
  }
}

/**
 * The session row says the session is no longer running (a cancel that reached
 * the database but not this run's signal): the run stops quietly.
 */
export class SessionNoLongerRunning extends Error {
  override name = 'SessionNoLongerRunning';
  constructor(sessionId: string) {
    super(`Session ${sessionId} is no longer running`);
  }
}

/** Why a job's signal was aborted: the process is stopping and the session will be resumed later. */
export class ShutdownInterrupted extends Error {
  override name = 'ShutdownInterrupted';
  constructor() {
    super('Interrupted by server shutdown');
  }
}

/** A per-owner limit is reached; the GraphQL layer reports it as RATE_LIMITED. The message names the limit. */
export class LimitReachedError extends Error {
  override name = 'LimitReachedError';
}

/** A page could not be painted again (its scene or composite failed, or the story went); the message is for users and says the page is unchanged. */
export class PageRepaintFailed extends Error {
  override name = 'PageRepaintFailed';
}

/** The work asked for is already being done (a page is being painted again, a book is still being written); the GraphQL layer reports it as CONFLICT. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Images are switched off (IMAGE_BACKEND=none), so no picture can be painted; the GraphQL layer reports it as IMAGES_DISABLED. */
export class ImagesDisabledError extends Error {
  override name = 'ImagesDisabledError';
}
