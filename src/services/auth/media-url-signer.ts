import { createHmac, timingSafeEqual } from 'node:crypto';
import type { MediaStore } from '../../ports/media-store.js';

/**
 * Signed, expiring media URLs: `<url>?expires=<unix s>&signature=<HMAC-SHA256(secret, key + "\n" + expires), base64url>`.
 * An <img> cannot send an Authorization header, so the URL itself is the permission.
 * Expiry is rounded up to a whole window so the same picture keeps the same URL for a while
 * (browser caching), then lives at least `ttlSeconds` more.
 */
export class MediaUrlSigner {
  constructor(
    private readonly secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  sign(url: string, key: string): string {
    const window = Math.max(60, Math.floor(this.ttlSeconds / 4));
    const expires = Math.ceil(this.now() / 1000 / window) * window + this.ttlSeconds;
    return `${url}?expires=${expires}&signature=${this.signature(key, expires)}`;
  }

  /** Whether the query string of a request for `key` carries a valid, unexpired signature. */
  verify(key: string, query: { expires?: unknown; signature?: unknown }): boolean {
    const expires = Number(query.expires);
    if (!Number.isInteger(expires) || expires * 1000 < this.now() || typeof query.signature !== 'string') return false;
    const expected = Buffer.from(this.signature(key, expires));
    const given = Buffer.from(query.signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private signature(key: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${key}\n${expires}`).digest('base64url');
  }
}

/** The same store, handing out signed URLs. */
export function withSignedUrls(store: MediaStore, signer: MediaUrlSigner): MediaStore {
  return {
    save: (bytes, extension) => store.save(bytes, extension),
    read: (key) => store.read(key),
    remove: (key) => store.remove(key),
    list: () => store.list(),
    urlFor: (key) => signer.sign(store.urlFor(key), key),
  };
}
