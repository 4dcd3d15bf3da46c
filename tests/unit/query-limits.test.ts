import { buildSchema, getIntrospectionQuery, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { QUERY_LIMITS, queryLimitsRule } from '../../src/http/query-limits.js';

const schema = buildSchema(`
  type Story { id: ID! title: String! storyText: String! related: [Story!]! }
  type StoryEdge { cursor: String! node: Story! }
  type StoryConnection { edges: [StoryEdge!]! totalCount: Int! }
  type Query { stories(limit: Int = 20): [Story!]! story: Story storyConnection(first: Int = 2, after: String): StoryConnection! }
`);

const limits = {
  ...QUERY_LIMITS,
  maxCost: 20,
  maxDepth: 3,
  maxPageSize: 100,
  unpagedListItems: 3,
  introspectionCost: 15,
  fieldWeights: { 'Story.storyText': 5 },
};

function errors(query: string, rule = queryLimitsRule(limits)) {
  return validate(schema, parse(query), [...specifiedRules, rule]).map((error) => error.message);
}

/** n fragments, each spreading the next twice: 2^n selections when walked, n+1 definitions written. */
function fragmentBomb(levels: number): string {
  const lines = ['query { story { ...F0 } }'];
  for (let level = 0; level < levels; level += 1) lines.push(`fragment F${level} on Story { ...F${level + 1} ...F${level + 1} }`);
  lines.push(`fragment F${levels} on Story { id }`);
  return lines.join('\n');
}

describe('query limits', () => {
  it('accepts an operation within the cost and depth limits', () => {
    expect(errors('{ story { id title related { id } } }')).toEqual([]);
  });

  it('counts many aliased fields, with what fragments bring in', () => {
    const aliases = Array.from({ length: 6 }, (_, index) => `a${index}: story { ...F }`).join(' ');
    expect(errors(`{ ${aliases} } fragment F on Story { id title }`)).toEqual([]);
    const more = Array.from({ length: 7 }, (_, index) => `a${index}: story { ...F }`).join(' ');
    expect(errors(`{ ${more} } fragment F on Story { id title }`)).toEqual([
      'This operation costs 21 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
  });

  it('multiplies by list sizes: the limit argument, a variable as the largest page, an absent one as its default, an unpaged list as 3 items', () => {
    // 1 + 4 × (1 + 1) = 9
    expect(errors('{ stories(limit: 4) { id title } }')).toEqual([]);
    // 1 + 100 × 1
    expect(errors('query($n: Int) { stories(limit: $n) { id } }')).toEqual([
      'This operation costs 101 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
    // 1 + 1 + 3 × (1 + 3 × 1) = 14
    expect(errors('{ story { related { related { id } } } }', queryLimitsRule({ ...limits, maxCost: 13, maxDepth: 10 }))).toEqual([
      'This operation costs 14 units (fields times list sizes); the limit is 13. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
    // 1 + 20 × 1: the argument's default
    expect(errors('{ stories { id } }')).toEqual([
      'This operation costs 21 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
  });

  it('weighs long texts by their length bound', () => {
    // 1 + 4 × 5 = 21
    expect(errors('{ stories(limit: 4) { storyText } }')).toEqual([
      'This operation costs 21 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
  });

  it('refuses nesting deeper than the limit', () => {
    expect(errors('{ story { related { id } } }', queryLimitsRule({ ...limits, maxCost: 1000 }))).toEqual([]);
    expect(errors('{ story { related { related { id } } } }', queryLimitsRule({ ...limits, maxCost: 1000 }))).toEqual([
      'This operation nests 4 levels deep; the limit is 3.',
    ]);
  });

  it('counts introspection: one __schema fits, two aliased do not', () => {
    expect(errors(getIntrospectionQuery())).toEqual([]);
    expect(errors('{ a: __schema { queryType { name } } b: __schema { queryType { name } } }')).toEqual([
      'This operation costs 30 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
  });

  it('prices a 30-level fragment bomb by arithmetic, not by walking its 2^30 selections', () => {
    const result = validate(schema, parse(fragmentBomb(30)), [...specifiedRules, queryLimitsRule(limits)]);
    // story (1) + 2^30 ids
    expect(result.map((error) => error.message)).toEqual([
      `This operation costs ${2 ** 30 + 1} units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.`,
    ]);
  });

  it('sizes a connection by its first argument, whatever fragments its edges come through', () => {
    const deep = queryLimitsRule({ ...limits, maxDepth: 8 });
    // 1 (connection) + first × (1 edges + 1 node + 1 id + 1 title + 1 totalCount): first = 3 costs 16, first = 4 costs 21.
    expect(errors('{ storyConnection(first: 3) { edges { node { id title } } totalCount } }', deep)).toEqual([]);
    expect(errors('{ storyConnection(first: 4) { edges { node { id title } } totalCount } }', deep)).toEqual([
      'This operation costs 21 units (fields times list sizes); the limit is 20. Ask for fewer fields, smaller pages or fewer aliases.',
    ]);
    expect(errors('query($n: Int) { storyConnection(first: $n) { ...C } } fragment C on StoryConnection { edges { node { id } } }', deep)).toHaveLength(1);
    expect(errors('{ storyConnection { edges { node { id title } } } }', deep)).toEqual([]);
  });

  it('lets the page and CLI operations through with the default limits', () => {
    const full = `query($limit: Int) { stories(limit: $limit) { ...S } } fragment S on Story { id title storyText related { id title } }`;
    expect(validate(schema, parse(full), [queryLimitsRule()])).toEqual([]);
  });
});
