import fs from 'node:fs/promises';
import path from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { gql } from '@apollo/client';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import ts from 'typescript';
import { describe, expect } from 'vitest';
import { createApolloClient, PROGRESS, removeStory, STORIES } from '../../docs/clients/apollo-client.js';
import codegenConfig from '../../docs/clients/codegen.js';
import { createRetryingClient, followGeneration, type Progress } from '../../docs/clients/graphql-ws.js';
import { createUrqlClient } from '../../docs/clients/urql.js';
import { GenerationProgressDocument, StartGenerationDocument } from '../../src/client/generated/graphql.js';
import { freshStackTest, test as it } from '../support/fixtures.js';

const root = path.resolve(import.meta.dirname, '../..');
const SNIPPETS = ['apollo-client.ts', 'urql.ts', 'graphql-ws.ts', 'codegen.ts'];

const START = gql`
  mutation Start($prompt: String!) {
    startGeneration(input: { prompt: $prompt }) { id status progressPercentage stage stageCode warnings }
  }
`;
const SESSION = gql`
  query Session($id: ID!) {
    generationSession(id: $id) { id status progressPercentage stage stageCode warnings }
  }
`;

describe('the README', () => {
  it('shows each client snippet exactly as the file the tests run', async () => {
    const readme = await fs.readFile(path.join(root, 'README.md'), 'utf8');
    for (const name of SNIPPETS) {
      const file = await fs.readFile(path.join(root, 'docs/clients', name), 'utf8');
      const marker = `<!-- docs/clients/${name} -->\n\`\`\`ts\n`;
      const start = readme.indexOf(marker);
      expect(start, `README has no block marked ${marker.trim()}`).toBeGreaterThan(-1);
      const body = readme.slice(start + marker.length, readme.indexOf('\n```\n', start + marker.length) + 1);
      expect(body, name).toBe(file);
    }
  });
});

describe('Apollo Client (docs/clients/apollo-client.ts)', () => {
  it('keeps the cached session current from progress events, and evicts a removed story from cached lists', async ({ server }) => {
    const client = createApolloClient(`${server.url}/graphql`);
    try {
      const started = await client.mutate<{ startGeneration: { id: string; status: string } }>({
        mutation: START,
        variables: { prompt: 'a fox who counts the stars' },
      });
      const id = started.data!.startGeneration.id;
      await client.query({ query: SESSION, variables: { id } });

      const events = await new Promise<{ session: { id: string; status: string; stageCode: string } }[]>((resolve, reject) => {
        const seen: { session: { id: string; status: string; stageCode: string } }[] = [];
        client.subscribe({ query: PROGRESS, variables: { sessionId: id } }).subscribe({
          next: ({ data }) => seen.push((data as { generationProgress: (typeof seen)[number] }).generationProgress),
          error: reject,
          complete: () => resolve(seen),
        });
      });
      expect(events.length).toBeGreaterThan(1);
      expect(events.every((event) => event.session.id === id)).toBe(true);
      expect(events.at(-1)!.session).toMatchObject({ status: 'COMPLETED', stageCode: 'COMPLETED' });

      // The query's cached answer was never fetched again: the subscription updated GenerationSession:<id>.
      const cached = client.readQuery<{ generationSession: { status: string; progressPercentage: number; stageCode: string } }>({
        query: SESSION,
        variables: { id },
      });
      expect(cached!.generationSession).toMatchObject({ status: 'COMPLETED', progressPercentage: 100, stageCode: 'COMPLETED', stage: 'Completed' });

      const first = await client.query<{ storyConnection: { edges: { node: { id: string } }[]; totalCount: number } }>({ query: STORIES });
      const storyId = first.data!.storyConnection.edges[0].node.id;
      await removeStory(client, storyId);
      const after = client.readQuery<{ storyConnection: { edges: { node: { id: string } | null }[] } }>({ query: STORIES });
      expect(after!.storyConnection.edges.map((edge) => edge.node?.id).filter(Boolean)).not.toContain(storyId);
      expect((client.cache.extract() as Record<string, unknown>)[`Story:${storyId}`]).toBeUndefined();
    } finally {
      client.stop();
    }
  });

  it('reads the story list page by page and merges the pages into one cached list', async ({ server }) => {
    for (const prompt of ['a lighthouse keeper', 'a kite that flies alone']) {
      const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt } });
      await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    }
    const client = createApolloClient(`${server.url}/graphql`);
    try {
      type Page = { storyConnection: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string }; totalCount: number } };
      const first = await client.query<Page>({ query: STORIES });
      const total = first.data!.storyConnection.totalCount;
      expect(total).toBeGreaterThanOrEqual(2);
      let page = first.data!.storyConnection;
      while (page.pageInfo.hasNextPage) {
        page = (await client.query<Page>({ query: STORIES, variables: { after: page.pageInfo.endCursor } })).data!.storyConnection;
      }
      const merged = client.readQuery<Page>({ query: STORIES })!.storyConnection.edges.map((edge) => edge.node.id);
      expect(new Set(merged).size).toBe(total);
    } finally {
      client.stop();
    }
  });
});

describe('urql (docs/clients/urql.ts)', () => {
  it("is refused by CSRF prevention with urql's default GET, and works with preferGetMethod: false", async ({ server }) => {
    const byDefault = new Client({ url: `${server.url}/graphql`, exchanges: [cacheExchange, fetchExchange] });
    const refused = await byDefault.query('{ stories { id } }', {}).toPromise();
    expect(refused.error?.message).toMatch(/CSRF/i);

    const client = createUrqlClient(`${server.url}/graphql`);
    const listed = await client.query('{ storyConnection(first: 1) { totalCount } }', {}).toPromise();
    expect(listed.error).toBeUndefined();
    expect(typeof (listed.data as { storyConnection: { totalCount: number } }).storyConnection.totalCount).toBe('number');

    const started = await client.mutation('mutation { startGeneration(input: { prompt: "a snail who races" }) { id } }', {}).toPromise();
    const id = (started.data as { startGeneration: { id: string } }).startGeneration.id;
    const statuses = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const { unsubscribe } = client
        .subscription(`subscription ($id: ID!) { generationProgress(sessionId: $id) { status session { id stageCode } } }`, { id })
        .subscribe((result) => {
          if (result.error) return reject(result.error);
          const event = (result.data as { generationProgress: { status: string; session: { id: string } } }).generationProgress;
          expect(event.session.id).toBe(id);
          seen.push(event.status);
          if (event.status === 'COMPLETED') {
            unsubscribe();
            resolve(seen);
          }
        });
    });
    expect(statuses.at(-1)).toBe('COMPLETED');
  });
});

describe('graphql-ws with retries (docs/clients/graphql-ws.ts)', () => {
  freshStackTest('follows a generation across a server restart on the same port, to its end', async ({ startServer, a1111 }) => {
    const first = await startServer();
    const port = String(first.app.http!.port);
    a1111.options.latencyMs = 3_000;
    const { startGeneration } = await first.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm' } });
    const client = createRetryingClient(`${first.url.replace('http', 'ws')}/graphql`);
    try {
      const events: Progress[] = [];
      let painting!: () => void;
      const reachedPainting = new Promise<void>((resolve) => (painting = resolve));
      const done = followGeneration(client, startGeneration.id, (event) => {
        events.push(event);
        if (event.stageCode === 'PAINTING') painting();
      });
      await reachedPainting;
      await first.stop({ keepData: true, graceMs: 0 });
      // Every event of the first server has arrived: its sockets are closed.
      const beforeRestart = events.length;
      a1111.options.latencyMs = 0;
      await startServer({ reuse: first, env: { PORT: port } });

      const last = await done;
      expect(last).toMatchObject({ sessionId: startGeneration.id, status: 'COMPLETED', stageCode: 'COMPLETED', progressPercentage: 100 });
      // After the restart the stream went on: the first event after reconnecting is the current state, with all text so far.
      const resumed = events.slice(beforeRestart);
      expect(resumed[0].storyTextReset).toBe(true);
      expect(resumed[0].storyTextDelta).toBeTruthy();
    } finally {
      await client.dispose();
    }
  });
});

describe('GraphQL Code Generator (docs/clients/codegen.ts)', () => {
  it('generates typed documents from the live schema that typecheck, with DateTimeISO as string', async ({ server }) => {
    const dir = path.join(root, 'test-artifacts', `codegen-${process.pid}-${Date.now()}`);
    await fs.mkdir(path.join(dir, 'src'), { recursive: true });
    try {
      await fs.writeFile(
        path.join(dir, 'src/stories.graphql'),
        'query Stories($after: String) { storyConnection(first: 5, after: $after) { edges { cursor node { id title createdAt } } totalCount } }\n',
      );
      await fs.writeFile(
        path.join(dir, 'src/use.ts'),
        [
          "import type { StoriesQuery } from './gql/graphql.js';",
          "export const when = (data: StoriesQuery): string => data.storyConnection.edges[0]?.node.createdAt ?? '';",
          'export const count = (data: StoriesQuery): number => data.storyConnection.totalCount;',
          '',
        ].join('\n'),
      );
      await generate({ ...codegenConfig, schema: `${server.url}/graphql`, cwd: dir, silent: true }, true);
      const generated = await fs.readFile(path.join(dir, 'src/gql/graphql.ts'), 'utf8');
      expect(generated).toContain('node: { id: string, title: string, createdAt: string }');

      const program = ts.createProgram([path.join(dir, 'src/use.ts')], {
        strict: true,
        noEmit: true,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        skipLibCheck: true,
        types: [],
      });
      const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      expect(problems).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
