import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ErrorCode } from '../client/error-codes.js';
import type { Logger } from '../logger.js';

/** A JSON error in the GraphQL error shape: `{"errors":[{"message","extensions":{"code"}}]}`. */
export function send(res: Parameters<RequestHandler>[1], status: number, message: string, code: string): void {
  res
    .status(status)
    .type('application/json')
    .send(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/** Unknown routes: a JSON error in the GraphQL error shape, not Express's HTML page. */
export const notFound: RequestHandler = (req, res) => {
  send(res, 404, `Nothing at ${req.method} ${req.path}. GraphQL is at /graphql.`, ErrorCode.NOT_FOUND);
};

/**
 * Errors thrown before GraphQL runs (body-parser's 413 and bad JSON, anything unexpected):
 * JSON in the GraphQL error shape, no stack trace, and one structured log line instead of
 * Express's HTML page and its dump on stderr.
 */
export function jsonErrors(logger: Logger, { bodyLimit }: { bodyLimit: string }): ErrorRequestHandler {
  return (error: { type?: string; status?: number; message?: string }, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error.type === 'entity.too.large') {
      logger.info({ path: req.path, status: 413 }, 'request body too large');
      return send(res, 413, `The request body is over ${bodyLimit}; send a shorter prompt.`, ErrorCode.PAYLOAD_TOO_LARGE);
    }
    if (error.type === 'entity.parse.failed') {
      logger.info({ path: req.path, status: 400 }, 'malformed JSON body');
      return send(res, 400, 'The request body is not valid JSON.', ErrorCode.MALFORMED_JSON);
    }
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) logger.error({ err: error, path: req.path }, 'request failed');
    else logger.info({ path: req.path, status }, error.message ?? 'request refused');
    send(
      res,
      status,
      status === 500 ? 'Internal server error.' : (error.message ?? 'Bad request.'),
      status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : status === 404 ? ErrorCode.NOT_FOUND : ErrorCode.BAD_REQUEST,
    );
  };
}
