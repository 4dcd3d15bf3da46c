import { buildSchema, getIntrospectionQuery, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { queryLimitsRule } from '../../src/http/query-limits.js';

const schema = buildSchema(`
  type Story { id: ID! title: String! related: [Story!]! }
  type Query { stories: [Story!]! }
`);

function errors(query: string) {
  return validate(schema, parse(query), [...specifiedRules, queryLimitsRule({ maxFields: 10, maxDepth: 3 })]).map((error) => error.message);
}

describe('query limits', () => {
  it('accepts an operation within the field and depth limits', () => {
    expect(errors('{ stories { id title related { id } } }')).toEqual([]);
  });

  it('refuses many aliased fields, counting what fragments bring in', () => {
    const aliases = Array.from({ length: 6 }, (_, index) => `a${index}: stories { ...F }`).join(' ');
    expect(errors(`{ ${aliases} } fragment F on Story { id }`)).toEqual(['This operation selects 12 fields; the limit is 10. Split it into smaller ones.']);
  });

  it('refuses nesting deeper than the limit', () => {
    expect(errors('{ stories { related { related { id } } } }')).toEqual(['This operation nests 4 levels deep; the limit is 3.']);
  });

  it('lets introspection through, however deep it nests', () => {
    expect(errors(getIntrospectionQuery())).toEqual([]);
  });
});
