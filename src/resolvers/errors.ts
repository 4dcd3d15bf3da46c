import { ErrorCode } from '../client/error-codes.js';
import { GraphQLError } from 'graphql';
import type { MiddlewareFn } from 'type-graphql';
import { ConflictError, ImagesDisabledError, InvalidInputError, LimitReachedError } from '../services/errors.js';

/** Turns a service's InvalidInputError into the BAD_USER_INPUT error clients look for. */
export function toGraphQLError(error: unknown): unknown {
  if (error instanceof InvalidInputError) {
    return new GraphQLError(error.message, { extensions: { code: ErrorCode.BAD_USER_INPUT }, originalError: error });
  }
  if (error instanceof LimitReachedError) {
    return new GraphQLError(error.message, { extensions: { code: ErrorCode.RATE_LIMITED }, originalError: error });
  }
  if (error instanceof ConflictError) {
    return new GraphQLError(error.message, { extensions: { code: ErrorCode.CONFLICT }, originalError: error });
  }
  if (error instanceof ImagesDisabledError) {
    return new GraphQLError(error.message, { extensions: { code: ErrorCode.IMAGES_DISABLED }, originalError: error });
  }
  return error;
}

export const mapServiceErrors: MiddlewareFn = async (_data, next) => {
  try {
    return await next();
  } catch (error) {
    throw toGraphQLError(error);
  }
};
