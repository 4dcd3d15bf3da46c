import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/services/errors.js';
import { decodeCursor, encodeCursor, requirePageSize, toConnection } from '../../src/services/pagination/cursor.js';

const position = { createdAt: '2026-11-30T17:30:00.123456Z', id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301' };

describe('cursors', () => {
  it('give back the exact place they were made from, microseconds included', () => {
    const cursor = encodeCursor('story', position);
    expect(cursor).toMatch(/^[\w-]+$/);
    expect(decodeCursor('story', cursor)).toEqual(position);
  });

  it.for([
    ['not base64 at all', '%%%'],
    ['not JSON', Buffer.from('story:2026').toString('base64url')],
    ['a cursor of the other list', encodeCursor('session', position)],
    ['a time cut to milliseconds', Buffer.from(JSON.stringify(['story', '2026-11-30T17:30:00.123Z', position.id])).toString('base64url')],
    ['a malformed id', Buffer.from(JSON.stringify(['story', position.createdAt, 'x'])).toString('base64url')],
    ['an impossible date', Buffer.from(JSON.stringify(['story', '2026-13-45T99:00:00.000000Z', position.id])).toString('base64url')],
    ['an empty string', ''],
  ])('refuses %s as InvalidInputError', ([, cursor]) => {
    expect(() => decodeCursor('story', cursor)).toThrow(InvalidInputError);
  });

  it('checks the page size: 1 to 100', () => {
    expect(requirePageSize(1)).toBe(1);
    expect(requirePageSize(100)).toBe(100);
    for (const bad of [0, 101, -1, 2.5, Number.NaN]) expect(() => requirePageSize(bad)).toThrow(InvalidInputError);
  });

  it('makes a connection whose endCursor is the last edge', () => {
    const other = { createdAt: '2026-11-30T17:29:00.000001Z', id: '00000000-0000-4000-8000-000000000001' };
    const connection = toConnection('story', {
      items: [
        { node: 'a', position },
        { node: 'b', position: other },
      ],
      hasMore: true,
      totalCount: 7,
    });
    expect(connection).toEqual({
      edges: [
        { cursor: encodeCursor('story', position), node: 'a' },
        { cursor: encodeCursor('story', other), node: 'b' },
      ],
      hasNextPage: true,
      endCursor: encodeCursor('story', other),
      totalCount: 7,
    });
    expect(toConnection('story', { items: [], hasMore: false, totalCount: 0 }).endCursor).toBeNull();
  });
});
