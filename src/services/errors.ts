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

/** Why a job's signal was aborted: the process is stopping and the session will be resumed later. */
export class ShutdownInterrupted extends Error {
  override name = 'ShutdownInterrupted';
  constructor() {
    super('Interrupted by server shutdown');
  }
}
