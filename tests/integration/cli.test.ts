import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument, StoriesDocument, StoryDocument } from '../../src/client/generated/graphql.js';
import { runStoryAgent } from '../support/story-agent-cli.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_PLAN, DEFAULT_REPLIES, startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** `story-agent` (bin/story-agent.js) as a user runs it: a child process against a real server. */

const TITLE = 'The Lighthouse Keeper and the Storm';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-cli-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('story-agent against a server with every backend up', () => {
  let ollama: FakeOllama;
  let a1111: FakeAutomatic1111;
  let server: TestServer;

  beforeAll(async () => {
    ollama = await startFakeOllama();
    a1111 = await startFakeAutomatic1111();
    server = await startTestServer({
      env: { OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'automatic1111', AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '128', IMAGE_HEIGHT: '96' },
    });
  });

  afterAll(async () => {
    await server?.stop();
    await ollama?.close();
    await a1111?.close();
  });

  it('generate streams the story to stdout, reports the stages on stderr, saves text and three pictures into --out, and exits 0', async () => {
    ollama.options.tokenDelayMs.story = 5;
    // The plan takes long enough for the CLI to subscribe while it is made: otherwise its first event may
    // already be the writing stage, and the planning stage is never seen (a subscriber gets the current state).
    ollama.options.firstTokenDelayMs.planner = 2000;
    onTestFinished(() => {
      ollama.options.firstTokenDelayMs.planner = 0;
    });
    const out = path.join(tmp, 'out');
    const run = await runStoryAgent([
      'generate',
      'a lighthouse keeper who befriends a storm',
      '--style',
      'watercolor',
      '--seed',
      '7',
      '--out',
      out,
      '--url',
      server.url,
    ]);
    expect(run.stderr).not.toContain('story-agent:');
    expect(run.code).toBe(0);

    const { stories } = await server.query(StoriesDocument, { limit: 1 });
    const { story } = await server.query(StoryDocument, { id: stories[0].id });
    expect(story!.title).toBe(TITLE);
    expect(run.stdout.trim()).toBe(story!.storyText);
    expect(run.stdout).not.toContain('Title:');

    // Without a terminal the bar becomes one line per stage, in order.
    const stages = run.stderr.split('\n').filter((line) => /^\[\s*\d+%\]/.test(line));
    expect(stages[0]).toMatch(/^\[\s*\d+%\] /);
    expect(stages.some((line) => /^\[\s*\d+%\] Planning the book$/.test(line))).toBe(true);
    expect(stages.some((line) => /^\[\s*\d+%\] Writing the story$/.test(line))).toBe(true);
    expect(stages.at(-1)).toBe('[100%] Completed');
    expect(run.stderr).toContain(`“${TITLE}” is story ${story!.id}.`);

    const files = (await fs.readdir(out)).sort();
    const base = 'the-lighthouse-keeper-and-the-storm';
    expect(files).toEqual([`${base}-background.png`, `${base}-character.png`, `${base}-combined.png`, `${base}.txt`]);
    for (const file of files.filter((name) => name.endsWith('.png'))) {
      const bytes = await fs.readFile(path.join(out, file));
      expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 128, height: 96 });
      expect(run.stderr).toContain(`Saved ${path.join(out, file)}`);
    }
    expect(await fs.readFile(path.join(out, `${base}.txt`), 'utf8')).toBe(`${TITLE}\n\n${story!.storyText}\n`);
    expect(a1111.calls.map((call) => call.seed).sort()).toEqual([7, 8]);
    expect(a1111.calls[0].prompt).toContain('watercolor');
  });

  it('generate --pages 3 writes page-01.png … page-03.png, the character picture and the text', async () => {
    const out = path.join(tmp, 'book');
    const run = await runStoryAgent(['generate', 'a lighthouse keeper who befriends a storm', '--pages', '3', '--out', out, '--url', server.url]);
    expect(run.code).toBe(0);
    const base = 'the-lighthouse-keeper-and-the-storm';
    expect((await fs.readdir(out)).sort()).toEqual(['page-01.png', 'page-02.png', 'page-03.png', `${base}-character.png`, `${base}.txt`]);
    expect(await sharp(await fs.readFile(path.join(out, 'page-02.png'))).metadata()).toMatchObject({ format: 'png', width: 128, height: 96 });
    expect(run.stderr).toMatch(/Writing page 3 of 3/);
  });

  it('list prints the stories newest first, show prints one, export writes it as self-contained HTML, EPUB or PDF', async () => {
    ollama.options.replies.planner = JSON.stringify({ ...DEFAULT_PLAN, title: 'The Second Story' });
    ollama.options.replies.story = 'A short second story. It ends here.';
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a second story' } });
    await server.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
    ollama.options.replies.story = DEFAULT_REPLIES.story;
    ollama.options.replies.planner = DEFAULT_REPLIES.planner;
    const { stories } = await server.query(StoriesDocument, { limit: 10 });

    const listed = await runStoryAgent(['list', '--url', server.url]);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).toHaveLength(stories.length);
    expect(lines[0]).toMatch(new RegExp(`^${stories[0].id}  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  The Second Story$`));
    expect(lines.map((line) => line.split('  ')[0])).toEqual(stories.map((story) => story.id));

    const shown = await runStoryAgent(['show', stories[0].id, '--url', server.url]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('The Second Story\n================\n\nA short second story. It ends here.\n');
    expect(shown.stdout).toContain(`combined   ${server.url}/media/`);

    const json = await runStoryAgent(['show', stories[0].id, '--json', '--url', server.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: stories[0].id, title: 'The Second Story' });

    const file = path.join(tmp, 'exported.html');
    const exported = await runStoryAgent(['export', stories[0].id, '--format', 'html', '--out', file, '--url', server.url]);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain(`Saved ${file}`);
    const html = await fs.readFile(file, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<h1 dir="auto">The Second Story</h1>');
    // The one page's illustration, embedded.
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(1);
    expect(html).not.toMatch(/(src|href)="(https?:|\/)/);

    // Without --output the file is named after the title, in the working directory.
    const named = await runStoryAgent(['export', stories[0].id, '--url', server.url], { cwd: tmp });
    expect(named.code).toBe(0);
    expect(await fs.readFile(path.join(tmp, 'the-second-story.html'), 'utf8')).toBe(html);

    const epub = await runStoryAgent(['export', stories[0].id, '--format', 'epub', '--url', server.url], { cwd: tmp });
    expect(epub.code).toBe(0);
    expect(epub.stderr).toMatch(/^Saved the-second-story\.epub \(\d+ kB\)\n$/);
    expect((await fs.readFile(path.join(tmp, 'the-second-story.epub'))).subarray(30, 58).toString('ascii')).toBe('mimetypeapplication/epub+zip');

    // --output - writes the bytes to stdout as they are.
    const pdf = await runStoryAgent(['export', stories[0].id, '--format', 'pdf', '--output', '-', '--url', server.url]);
    expect(pdf.code).toBe(0);
    expect(pdf.stdout).toMatch(/^%PDF-1\.7\n/);
    expect(pdf.stdout).toMatch(/%%EOF\n?$/);
  });

  it('list reads page by page with --after and --all; sessions finds a running generation and follow follows it to its end', async () => {
    const { stories } = await server.query(StoriesDocument, { limit: 100 });
    expect(stories.length).toBeGreaterThanOrEqual(2);
    const first = await runStoryAgent(['list', '--limit', '1', '--url', server.url]);
    expect(first.code).toBe(0);
    expect(first.stdout.split('  ')[0]).toBe(stories[0].id);
    const hint = first.stderr.match(/^1 of (\d+) shown; more: story-agent list --after (\S+)$/m);
    expect(hint?.[1]).toBe(String(stories.length));
    const second = await runStoryAgent(['list', '--limit', '1', '--after', hint![2], '--url', server.url]);
    expect(second.stdout.split('  ')[0]).toBe(stories[1].id);
    const all = await runStoryAgent(['list', '--all', '--limit', '1', '--url', server.url]);
    expect(
      all.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('  ')[0]),
    ).toEqual(stories.map((story) => story.id));
    const badCursor = await runStoryAgent(['list', '--after', 'nonsense', '--url', server.url]);
    expect(badCursor.code).toBe(2);

    a1111.options.latencyMs = 3_000;
    onTestFinished(() => {
      a1111.options.latencyMs = 0;
    });
    const { startGeneration } = await server.query(StartGenerationDocument, { input: { prompt: 'a book left running' } });
    const listed = await runStoryAgent(['sessions', '--url', server.url]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`^${startGeneration.id}  .+  (PENDING|GENERATING_STORY|GENERATING_IMAGES) +\\d+%  [A-Z_]+  a book left running$`, 'm'),
    );
    expect(listed.stdout.trim().split('\n')).toHaveLength(1);
    expect(listed.stderr).toContain('Follow one with: story-agent follow <id>');

    const out = path.join(tmp, 'followed');
    const followed = await runStoryAgent(['follow', startGeneration.id, '--out', out, '--url', server.url]);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain(DEFAULT_REPLIES.story.split('\n').at(-1)!.slice(0, 20));
    expect((await fs.readdir(out)).filter((name) => name.endsWith('.png'))).toHaveLength(3);
    const after = await runStoryAgent(['sessions', '--url', server.url]);
    expect(after.stdout).toBe('');
    expect(after.stderr).toBe('No generation is running (--all lists the finished ones too).\n');
    const everything = await runStoryAgent(['sessions', '--all', '--json', '--url', server.url]);
    expect((JSON.parse(everything.stdout) as { id: string; stageCode: string }[])[0]).toMatchObject({ id: startGeneration.id, stageCode: 'COMPLETED' });
  });

  it('exits 2 with the server’s message for an empty prompt, an unknown story, or an unknown format', async () => {
    const empty = await runStoryAgent(['generate', '   ', '--url', server.url]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe('story-agent: The prompt is empty: describe the story you want in 1 to 2000 characters.\n');
    expect(empty.stdout).toBe('');

    // Numbers out of range are refused in the option's own words, not the API's (pageCount, "Int cannot represent…").
    const tooManyPages = await runStoryAgent(['generate', 'a fox', '--pages', '13', '--url', server.url]);
    expect(tooManyPages.code).toBe(2);
    expect(tooManyPages.stderr).toContain("option '-p, --pages <n>' argument '13' is invalid. --pages must be a whole number from 1 to 12.");
    const hugeSeed = await runStoryAgent(['generate', 'a fox', '--seed', '99999999999', '--url', server.url]);
    expect(hugeSeed.code).toBe(2);
    expect(hugeSeed.stderr).toContain("option '--seed <n>' argument '99999999999' is invalid. --seed must be a whole number from 0 to 2147483647.");

    const malformed = await runStoryAgent(['show', 'not-an-id', '--url', server.url]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toBe('story-agent: "not-an-id" is not a valid story id: expected a UUID.\n');

    // An unknown id is bad input for every command, as `delete`, `edit` and `repaint` (the server's BAD_USER_INPUT) exit 2 for it.
    const missing = await runStoryAgent(['show', '00000000-0000-4000-8000-000000000000', '--url', server.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('story-agent: No story has the id 00000000-0000-4000-8000-000000000000.\n');

    const format = await runStoryAgent(['export', '00000000-0000-4000-8000-000000000000', '--format', 'docx', '--url', server.url]);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("argument 'docx' is invalid. Allowed choices are html, epub, pdf.");

    const unknown = await runStoryAgent(['export', '00000000-0000-4000-8000-000000000000', '--format', 'epub', '--url', server.url]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('story-agent: No story has the id 00000000-0000-4000-8000-000000000000.\n');
  });
});

describe('story-agent when something is down', () => {
  it('exits 1 with the server’s error message on stderr when Ollama is not running', async () => {
    const ollama = await startFakeOllama();
    await ollama.close();
    const server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url } });
    try {
      const out = path.join(tmp, 'failed');
      const run = await runStoryAgent(['generate', 'a lighthouse keeper who befriends a storm', '--out', out, '--url', server.url]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        `story-agent: The generation failed: Ollama is not reachable at ${ollama.url}: start it with \`ollama serve\` (or set OLLAMA_BASE_URL to where it runs)\n`,
      );
      expect(run.stderr).toMatch(/^\[\s*\d+%\] Failed$/m);
      expect(run.stdout).toBe('');
      await expect(fs.access(out)).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });

  it('prints each warning with its code and page, one greppable line each, and sessions --json keeps the codes', async () => {
    const ollama = await startFakeOllama();
    const server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, IMAGE_BACKEND: 'automatic1111', AUTOMATIC1111_URL: 'http://127.0.0.1:9' } });
    try {
      const run = await runStoryAgent(['generate', 'a kite that flies alone', '--pages', '2', '--url', server.url]);
      expect(run.stderr).not.toContain('story-agent:');
      expect(run.code).toBe(0);
      const warnings = run.stderr.split('\n').filter((line) => line.startsWith('warning '));
      expect(warnings).toHaveLength(3);
      expect(warnings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^warning \[CHARACTER_NOT_PAINTED\]: The character picture could not be painted.*127\.0\.0\.1:9/),
          expect.stringMatching(/^warning \[SCENE_NOT_PAINTED\] page 1: \S.*127\.0\.0\.1:9/),
          expect.stringMatching(/^warning \[SCENE_NOT_PAINTED\] page 2: \S.*127\.0\.0\.1:9/),
        ]),
      );
      expect(run.stderr).not.toContain('Warning:');

      const listed = await runStoryAgent(['sessions', '--all', '--json', '--url', server.url]);
      const [session] = JSON.parse(listed.stdout) as { warnings: string[]; warningDetails: { code: string; message: string; pageIndex: number | null }[] }[];
      expect(session.warningDetails.map(({ code, pageIndex }) => ({ code, pageIndex }))).toEqual(
        expect.arrayContaining([
          { code: 'CHARACTER_NOT_PAINTED', pageIndex: null },
          { code: 'SCENE_NOT_PAINTED', pageIndex: 0 },
          { code: 'SCENE_NOT_PAINTED', pageIndex: 1 },
        ]),
      );
      expect(session.warningDetails.map(({ message }) => message)).toEqual(session.warnings);
    } finally {
      await server.stop();
      await ollama.close();
    }
  });

  it('exits 1 and says how to start the server when nothing answers at --url', async () => {
    const ollama = await startFakeOllama();
    const url = ollama.url;
    await ollama.close();
    const run = await runStoryAgent(['list', '--url', url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`story-agent: Cannot reach Story Agent at ${url}: start it with \`npm start\`, or pass --url to where it runs.\n`);
  });
});
