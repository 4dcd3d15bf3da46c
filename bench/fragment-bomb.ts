/** Validation time of a fragment bomb (n fragments, each spreading the next twice), graphql-js rules alone and with ours. */
import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { queryLimitsRule } from '../src/http/query-limits.js';
const schema = buildSchema(`type Story { id: ID! related: [Story!]! } type Query { story: Story }`);
for (const levels of (process.argv[2] ?? '16,18,20,22,30').split(',').map(Number)) {
  const lines = ['query { story { ...F0 } }'];
  for (let l = 0; l < levels; l++) lines.push(`fragment F${l} on Story { ...F${l + 1} ...F${l + 1} }`);
  lines.push(`fragment F${levels} on Story { id }`);
  const doc = parse(lines.join('\n'));
  let t = performance.now();
  validate(schema, doc, specifiedRules);
  const spec = performance.now() - t;
  t = performance.now();
  const e = validate(schema, doc, [...specifiedRules, queryLimitsRule()]);
  const ours = performance.now() - t;
  console.log(levels, 'levels', lines.join('\n').length, 'bytes: spec rules', spec.toFixed(0), 'ms; with limit rule', ours.toFixed(0), 'ms', e.length);
}
