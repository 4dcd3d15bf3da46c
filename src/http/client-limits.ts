import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { ErrorCode } from '../client/error-codes.js';

/**
 * Who a limit counts against: the API key a request carries (one owner, whichever address it
 * comes from), else the address it comes from (AUTH_MODE=none, or a request with no key, which
 * is refused anyway). The key is hashed: limits never hold secrets.
 */
function apiKeyClient(authorization: string | undefined): string | null {
  const key = authorization?.replace(/^Bearer\s+/i, '').trim();
  return key ? `key:${createHash('sha256').update(key).digest('hex')}` : null;
}

/**
 * At most `perMinute` GraphQL requests per client in any one-minute window (express-rate-limit's
 * fixed window, in memory: per API process). Over it: HTTP 429, a GraphQL error with code
 * RATE_LIMITED and the limit in its message, and the standard RateLimit headers.
 */
export function requestRateLimit(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    // Written out rather than through clientKey(): express-rate-limit checks that a key built from req.ip goes through ipKeyGenerator.
    keyGenerator: (req) => apiKeyClient(req.headers.authorization) ?? `address:${ipKeyGenerator(req.ip ?? 'unknown')}`,
    handler: (_req, res) => {
      res.status(429).json({
        errors: [
          {
            message: `Too many requests: the limit is ${perMinute} a minute for each API key (RATE_LIMIT_PER_MINUTE). Try again in a minute.`,
            extensions: { code: ErrorCode.RATE_LIMITED },
          },
        ],
      });
    },
  });
}

/**
 * Open subscriptions per client across all of its WebSocket connections. Each connection is
 * registered under its client key; the count is the sum of its connections' open subscriptions,
 * read from graphql-ws's own bookkeeping, so nothing can drift when a socket drops.
 */
export class SubscriptionCounter<Connection extends { subscriptions: Record<string, unknown> }> {
  private readonly connections = new Map<string, Set<Connection>>();

  add(client: string, connection: Connection): void {
    let set = this.connections.get(client);
    if (!set) {
      set = new Set();
      this.connections.set(client, set);
    }
    set.add(connection);
  }

  remove(client: string, connection: Connection): void {
    const set = this.connections.get(client);
    set?.delete(connection);
    if (set?.size === 0) this.connections.delete(client);
  }

  /** Subscriptions the client has open now, over every connection. */
  open(client: string): number {
    let count = 0;
    for (const connection of this.connections.get(client) ?? []) count += Object.keys(connection.subscriptions).length;
    return count;
  }
}

/** The client key of a WebSocket connection, from its connectionParams and the upgrade request. */
export function connectionClientKey(connectionParams: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): string {
  const authorization = connectionParams?.authorization;
  return apiKeyClient(typeof authorization === 'string' ? authorization : undefined) ?? `address:${ipKeyGenerator(request.socket.remoteAddress ?? 'unknown')}`;
}
