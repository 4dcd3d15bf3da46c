import fs from 'node:fs';
import { buildSchema, findBreakingChanges, findDangerousChanges } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printAppSchema } from '../../src/schema/build-schema.js';

/** The contracts, in order: each later file extends the ones before it. */
const CONTRACTS = ['api-contract.graphql', 'api-contract-books.graphql'].map((name) => ({
  name,
  shared: new URL(`../../../shared/${name}`, import.meta.url),
  committed: new URL(`../contract/${name}`, import.meta.url),
}));

/**
 * What the books contract promises and the next issue (page editing and
 * export) brings; the breaking changes findBreakingChanges reports for them,
 * word for word. This list only ever shrinks: the test fails both when one of
 * these is missing and when it has arrived but is still listed.
 */
const NOT_YET_SERVED: string[] = [];

function contractSchema(upTo: number) {
  return buildSchema(
    CONTRACTS.slice(0, upTo + 1)
      .map((contract) => fs.readFileSync(contract.committed, 'utf8'))
      .join('\n'),
  );
}

describe('the served schema', () => {
  // Outside this team's checkout there is no ../shared: the test says it was skipped, and why, rather than pass (CI always has it).
  it.for(CONTRACTS)('keeps the committed copy of $name identical to ../shared when that is present', ({ shared, committed }, { skip }) => {
    skip(!fs.existsSync(shared) && process.env.CI !== 'true', `no ${shared.pathname} to compare with`);
    expect(fs.readFileSync(committed, 'utf8')).toBe(fs.readFileSync(shared, 'utf8'));
  });

  it('is a compatible superset of the first public contract: no breaking change, and no dangerous one the books contract does not make itself', async () => {
    const served = buildSchema(await printAppSchema());
    expect(findBreakingChanges(contractSchema(0), served)).toEqual([]);
    // The books contract adds the optional input field pageCount, which graphql-js counts as dangerous.
    expect(findDangerousChanges(contractSchema(0), served)).toEqual(findDangerousChanges(contractSchema(0), contractSchema(1)));
  });

  it('is a compatible superset of the books contract, but for exactly the parts the next issue brings', async () => {
    const served = buildSchema(await printAppSchema());
    const breaking = findBreakingChanges(contractSchema(1), served).map((change) => change.description);
    expect(breaking.sort()).toEqual([...NOT_YET_SERVED].sort());
    expect(findDangerousChanges(contractSchema(1), served)).toEqual([]);
  });

  it('matches the committed schema.graphql (run `npm run schema` after changing it)', async () => {
    expect(fs.readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')).toBe(await printAppSchema());
  });
});
