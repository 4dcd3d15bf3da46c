import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { publicUrlsFor, requestOrigin } from '../../src/http/public-urls.js';

function request(headers: Record<string, string>, remoteAddress = '127.0.0.1', encrypted = false): IncomingMessage {
  return { headers, socket: { remoteAddress, encrypted } } as unknown as IncomingMessage;
}
const trustNone = () => false;
const trustLoopback = (address: string) => address === '127.0.0.1';

describe('requestOrigin', () => {
  it('is the Host the request reached, https on a TLS socket', () => {
    expect(requestOrigin(request({ host: 'stories.test:4000' }), trustNone)).toBe('http://stories.test:4000');
    expect(requestOrigin(request({ host: 'stories.test' }, '10.0.0.1', true), trustNone)).toBe('https://stories.test');
    expect(requestOrigin(request({ host: '[::1]:4000' }), trustNone)).toBe('http://[::1]:4000');
  });

  it('believes X-Forwarded-Proto and -Host (their first values) only from a trusted peer', () => {
    const headers = { host: 'internal:4000', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'stories.example, proxy.internal' };
    expect(requestOrigin(request(headers), trustLoopback)).toBe('https://stories.example');
    expect(requestOrigin(request(headers, '203.0.113.9'), trustLoopback)).toBe('http://internal:4000');
  });

  it('is null for a missing or malformed host and an unknown protocol', () => {
    expect(requestOrigin(request({}), trustNone)).toBeNull();
    expect(requestOrigin(request({ host: 'evil.test/path?' }), trustNone)).toBeNull();
    expect(requestOrigin(request({ host: 'a b' }), trustNone)).toBeNull();
    expect(requestOrigin(request({ host: 'ok.test', 'x-forwarded-proto': 'javascript' }), trustLoopback)).toBeNull();
  });
});

describe('publicUrlsFor', () => {
  const path = '/media/images/3f2504e0-4f89-41d3-9a0c-0305e82c3301.png?expires=1&signature=x';

  it('starts with PUBLIC_BASE_URL (with its path) when set', () => {
    const urls = publicUrlsFor(request({ host: 'other.test' }), { publicBaseUrl: 'https://example.org/stories', mode: 'absolute', trusts: trustNone });
    expect(urls.resolve(path)).toBe(`https://example.org/stories${path}`);
  });

  it("starts with the request's origin otherwise, and keeps the path where there is none", () => {
    expect(publicUrlsFor(request({ host: 'stories.test' }), { publicBaseUrl: undefined, mode: 'absolute', trusts: trustNone }).resolve(path)).toBe(
      `http://stories.test${path}`,
    );
    expect(publicUrlsFor(request({}), { publicBaseUrl: undefined, mode: 'absolute', trusts: trustNone }).resolve(path)).toBe(path);
  });

  it('keeps server-relative paths in relative mode, even with PUBLIC_BASE_URL', () => {
    const urls = publicUrlsFor(request({ host: 'stories.test' }), { publicBaseUrl: 'https://example.org', mode: 'relative', trusts: trustNone });
    expect(urls.resolve(path)).toBe(path);
  });
});
