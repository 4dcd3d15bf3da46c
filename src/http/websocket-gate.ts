import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { GRAPHQL_TRANSPORT_WS_PROTOCOL } from 'graphql-ws';
import type { Logger } from '../logger.js';

/** Who may open a GraphQL WebSocket: `*` (anyone, set on purpose), or origins besides the server's own. */
export type AllowedOrigins = '*' | readonly string[];

export type UpgradeRefusal = { status: 403; reason: string } | { status: 400; reason: string } | { status: 404; reason: string };

/**
 * Decides, before the WebSocket handshake, whether an upgrade request may proceed.
 * Browsers always send `Origin`; a page on another site must not drive the API
 * through its visitor's browser (WebSockets escape the CORS checks HTTP gets). Clients
 * that send no Origin (the CLI, scripts) are not browsers and pass this check.
 * The server's own origin is the request's `Host` (and PUBLIC_BASE_URL's, when set).
 */
export function checkUpgrade(
  request: Pick<http.IncomingMessage, 'headers' | 'url'>,
  { path, allowedOrigins, publicOrigin }: { path: string; allowedOrigins: AllowedOrigins; publicOrigin: string | null },
): UpgradeRefusal | null {
  if (new URL(request.url ?? '/', 'http://x').pathname !== path) return { status: 404, reason: `No WebSocket endpoint here; GraphQL is at ${path}.` };
  const origin = request.headers.origin;
  if (origin && allowedOrigins !== '*') {
    const own = [`http://${request.headers.host}`, `https://${request.headers.host}`, ...(publicOrigin ? [publicOrigin] : [])];
    if (!own.includes(origin) && !allowedOrigins.includes(origin)) {
      return { status: 403, reason: `WebSocket connections from ${origin} are not allowed; add it to ALLOWED_ORIGINS to allow it.` };
    }
  }
  const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((name) => name.trim());
  if (!offered.includes(GRAPHQL_TRANSPORT_WS_PROTOCOL)) {
    return {
      status: 400,
      reason: `Offer the ${GRAPHQL_TRANSPORT_WS_PROTOCOL} subprotocol (graphql-ws 5 or later); ${offered.filter(Boolean).join(', ') || 'none'} offered. The legacy subscriptions-transport-ws protocol is not served.`,
    };
  }
  return null;
}

/** Answers a refused upgrade with a plain HTTP response (a browser shows the status; tools show the reason) and logs it. */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal, request: http.IncomingMessage, logger: Logger): void {
  logger.warn(
    { status: refusal.status, origin: request.headers.origin, protocols: request.headers['sec-websocket-protocol'] },
    `WebSocket refused: ${refusal.reason}`,
  );
  const body = JSON.stringify({ errors: [{ message: refusal.reason }] });
  const statusText = refusal.status === 403 ? 'Forbidden' : refusal.status === 404 ? 'Not Found' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${refusal.status} ${statusText}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
