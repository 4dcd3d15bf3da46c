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
