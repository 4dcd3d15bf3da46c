import { serverAudits } from 'graphql-http';
import { describe, expect } from 'vitest';
import { test as it } from '../support/fixtures.js';

describe('the GraphQL-over-HTTP spec audit (graphql-http serverAudits)', () => {
  const audits = (url: string) => serverAudits({ url, fetchFn: fetch }).filter((audit) => audit.name.startsWith('MUST'));
  // Listed before any server exists (the URL is not called); each test runs its audit against the file's server.
  const listed = audits('http://127.0.0.1:9/graphql').map((audit) => [audit.name, audit.id] as const);

  it.for(listed)('%s', async ([_name, id], { server }) => {
    const audit = audits(`${server.url}/graphql`).find((candidate) => candidate.id === id)!;
    const result = await audit.fn();
    expect(result.status === 'ok' ? 'ok' : `${result.status}: ${result.reason}`).toBe('ok');
  });
});
