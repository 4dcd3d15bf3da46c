import { randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument, StoryDocument, type StoryFieldsFragment } from '../../src/client/generated/graphql.js';
import { DEFAULT_PLAN } from '../support/fake-ollama.js';
import { test as it } from '../support/fixtures.js';
import { runStoryAgent } from '../support/story-agent-cli.js';
import type { TestServer } from '../support/test-server.js';

/** `story-agent repaint`, `edit` and `delete` (bin/story-agent.js, compiled: `node scripts/build.mjs` first) against a real server. */

async function makeBook(server: TestServer, pageCount: number): Promise<StoryFieldsFragment> {
  const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper who befriends a storm', pageCount } });
  const events = await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  return storyOf(server, events.at(-1)!.generationProgress.storyId!);
}

async function storyOf(server: TestServer, id: string): Promise<StoryFieldsFragment> {
  return (await server.query(StoryDocument, { id })).story!;
}

describe('story-agent page editing', () => {
  it('repaint --page 2 paints the second page (pageIndex 1) again with the seed given, shows the stage and prints the new URL', async ({ server, a1111 }) => {
    const book = await makeBook(server, 3);
    const calls = a1111.calls.length;
    const run = await runStoryAgent(['repaint', book.id, '--page', '2', '--seed', '321', '--url', server.url]);
    expect(run.stderr).toContain('Painting page 2 of “The Lighthouse Keeper and the Storm” again');
    expect(run.stderr).toContain('Painting the page again');
    expect(run.stderr).toContain('Page 2 is painted again.');
    expect(run.code).toBe(0);
    expect(a1111.calls.slice(calls).map((call) => [call.prompt.slice(0, DEFAULT_PLAN.pages[1].scene.length), call.seed])).toEqual([
      [DEFAULT_PLAN.pages[1].scene, 321],
    ]);
    const after = await storyOf(server, book.id);
    expect(after.pages[1].combinedImage!.id).not.toBe(book.pages[1].combinedImage!.id);
    expect(after.pages[0].combinedImage!.id).toBe(book.pages[0].combinedImage!.id);
    expect(run.stdout.trim()).toBe(after.pages[1].combinedImage!.url);
  });

  it('repaint --redescribe describes the scene again first', async ({ server, ollama }) => {
    const book = await makeBook(server, 2);
    // The description streams slowly enough that the CLI, subscribing after its mutation, sees that stage.
    ollama.options.tokenDelayMs.background = 150;
    const run = await runStoryAgent(['repaint', book.id, '--page', '1', '--redescribe', '--url', server.url]).finally(() => {
      ollama.options.tokenDelayMs.background = 0;
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('Describing the scene again');
    expect((await storyOf(server, book.id)).pages[0].sceneDescription).not.toBe(book.pages[0].sceneDescription);
  });

  it('edit --page 1 replaces the first page text and says how to repaint it to match', async ({ server }) => {
    const book = await makeBook(server, 2);
    const run = await runStoryAgent(['edit', book.id, '--page', '1', '--text', '  A new first page.  ', '--url', server.url]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`story-agent repaint ${book.id} --page 1 --redescribe`);
    const after = await storyOf(server, book.id);
    expect(after.pages[0].text).toBe('A new first page.');
    expect(after.storyText.startsWith('A new first page.\n\n')).toBe(true);
  });

  it.for([
    [['repaint', '--page', '3'], /has no page 3; it has 2 pages: --page 1 to 2/],
    [['repaint', '--page', '0'], /--page must be a whole number of at least 1/],
    [['edit', '--page', '1', '--text', '   '], /The page text is empty/],
    [['edit', '--page', '2'], /required option '--text <text>' not specified/],
  ] as const)('%s exits 2 with a message and changes nothing', async ([args, message], { server }) => {
    const book = await makeBook(server, 2);
    const [command, ...rest] = args;
    const run = await runStoryAgent([command, book.id, ...rest, '--url', server.url]);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
    expect(await storyOf(server, book.id)).toEqual(book);
  });

  it('show lists the picture of every page of a book, counted from 1, after the character', async ({ server }) => {
    const book = await makeBook(server, 3);
    const run = await runStoryAgent(['show', book.id, '--url', server.url]);
    expect(run.code).toBe(0);
    const pictureLines = run.stdout.trimEnd().split('\n').slice(-4);
    expect(pictureLines).toEqual([
      `character  ${book.characterImage!.url}`,
      ...book.pages.map((page) => `page ${page.index + 1}     ${page.combinedImage!.url}`),
    ]);
  });

  it('delete removes a story and exits 0; an unknown id exits 2, for repaint and edit too', async ({ server }) => {
    const book = await makeBook(server, 1);
    const run = await runStoryAgent(['delete', book.id, '--url', server.url]);
    expect(run).toMatchObject({ code: 0, stderr: `Deleted story ${book.id}.\n` });
    expect((await server.query(StoryDocument, { id: book.id })).story).toBeNull();
    const unknown = randomUUID();
    const again = await runStoryAgent(['delete', unknown, '--url', server.url]);
    expect(again.stderr).toContain(`No story has the id ${unknown}`);
    expect(again.code).toBe(2);
    // The same unknown id is bad input for repaint and edit too.
    for (const args of [
      ['repaint', unknown, '--page', '1'],
      ['edit', unknown, '--page', '1', '--text', 'x'],
    ]) {
      const run = await runStoryAgent([...args, '--url', server.url]);
      expect(run).toMatchObject({ code: 2, stderr: `story-agent: No story has the id ${unknown}.\n` });
    }
  });
});
