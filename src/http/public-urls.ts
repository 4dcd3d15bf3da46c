import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** Turns a server path into the URL a client is handed (a picture's, an export's). */
export interface PublicUrls {
  /** `path` starts with `/` and may carry a query (`/media/images/….png?expires=…`); returns it absolute, or as it is in relative mode. */
  resolve(path: string): string;
}

export interface PublicUrlSettings {
  /** PUBLIC_BASE_URL without a trailing slash; may end in a path (`https://example.org/stories`). */
  publicBaseUrl: string | undefined;
  /** PUBLIC_URLS. */
  mode: 'absolute' | 'relative';
  /** Whether the peer that sent a request is a proxy whose X-Forwarded-* headers are believed (Express's compiled `trust proxy`). */
  trusts: (address: string, hop: number) => boolean;
}

/** What a Host header may hold: a name or IPv4 address, or a bracketed IPv6 one, and a port. Anything else is not used in a URL. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The origin a client reached this server at: `proto://host` from the
 * request (an HTTP request or a WebSocket's upgrade request), taking
 * X-Forwarded-Proto and X-Forwarded-Host (their first values, as Express
 * does) only from a trusted proxy. Null when the host is missing or malformed.
 */
export function requestOrigin(request: IncomingMessage, trusts: PublicUrlSettings['trusts']): string | null {
  const trusted = trusts(request.socket.remoteAddress ?? '', 0);
  const forwarded = (name: string) => {
    const value = request.headers[name];
    return trusted && typeof value === 'string' ? value.split(',')[0].trim() : '';
  };
  const proto = forwarded('x-forwarded-proto') || ((request.socket as TLSSocket).encrypted ? 'https' : 'http');
  const host = forwarded('x-forwarded-host') || request.headers.host || '';
  if (!['http', 'https'].includes(proto.toLowerCase()) || !HOST.test(host)) return null;
  return `${proto.toLowerCase()}://${host}`;
}

/**
 * The URL builder for one request: PUBLIC_BASE_URL when set, else the
 * request's own origin; server-relative paths with PUBLIC_URLS=relative (or
 * when the request names no usable host).
 */
export function publicUrlsFor(request: IncomingMessage, settings: PublicUrlSettings): PublicUrls {
  const base = settings.mode === 'relative' ? '' : (settings.publicBaseUrl ?? requestOrigin(request, settings.trusts) ?? '');
  return { resolve: (path) => `${base}${path}` };
}
