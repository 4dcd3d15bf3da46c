import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationProgressDocument, StartGenerationDocument, StoryDocument, type StoryFieldsFragment } from '../../src/client/generated/graphql.js';
import { createApiKey } from '../support/api-keys.js';
import { pdfFonts, pdfInfo, pdfPageTexts, runEpubcheck, withoutWhitespace } from '../support/document-tools.js';
import { epubcheck, poppler, skipWithoutTool, toolAvailable } from '../support/environment.js';
import { startFakeAutomatic1111, type FakeAutomatic1111 } from '../support/fake-automatic1111.js';
import { DEFAULT_PLAN, startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { createTestClient, type TestClient } from '../support/test-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** Every page of the fake's book says this: three scripts on one page. */
const PAGE_TEXT = 'Mara lit the lamp. Мара зажгла лампу. 玛拉点亮了灯。';
const TITLE = 'Мара и буря: 灯塔';
const PAGES = 3;

let ollama: FakeOllama;
let a1111: FakeAutomatic1111;

async function makeBook(client: Pick<TestClient, 'query' | 'subscribe'>): Promise<StoryFieldsFragment> {
  const { startGeneration } = await client.query(StartGenerationDocument, { input: { prompt: 'a lighthouse keeper and a storm', pageCount: PAGES } });
  const events = await client.subscribe(GenerationProgressDocument, { sessionId: startGeneration.id }).done;
  const storyId = events.at(-1)?.generationProgress.storyId;
  expect(events.at(-1)?.generationProgress.status).toBe('COMPLETED');
  const { story } = await client.query(StoryDocument, { id: storyId! });
  return story!;
}

beforeAll(async () => {
  ollama = await startFakeOllama();
  ollama.options.replies.planner = JSON.stringify({ ...DEFAULT_PLAN, title: TITLE });
  ollama.options.replies.story = PAGE_TEXT;
  a1111 = await startFakeAutomatic1111();
});

afterAll(async () => {
  await ollama?.close();
  await a1111?.close();
});

describe('exportUrl over HTTP', () => {
  let server: TestServer;
  let story: StoryFieldsFragment;
  const tools = { epub: false, pdf: false };

  beforeAll(async () => {
    tools.epub = toolAvailable(epubcheck);
    tools.pdf = toolAvailable(poppler);
    server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, AUTOMATIC1111_URL: a1111.url, IMAGE_WIDTH: '128', IMAGE_HEIGHT: '96' } });
    story = await makeBook(server);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  async function download(url: string) {
    const response = await fetch(url);
    return { response, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  it('gives an absolute link per format, on the server the request went to', () => {
    expect(story.pages).toHaveLength(PAGES);
    expect(story.htmlUrl).toBe(`${server.url}/export/${story.id}.html`);
    expect(story.epubUrl).toBe(`${server.url}/export/${story.id}.epub`);
    expect(story.pdfUrl).toBe(`${server.url}/export/${story.id}.pdf`);
  });

  it('downloads the HTML: every page, pictures embedded, as an attachment named after the title', async () => {
    const { response, bytes } = await download(story.htmlUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe(
      // The colon cannot be in a file name; the Cyrillic and Chinese can, percent-encoded as UTF-8.
      `attachment; filename="story-${story.id.slice(0, 8)}.html"; filename*=UTF-8''${encodeURIComponent('Мара и буря 灯塔.html')}`,
    );
    const html = bytes.toString('utf8');
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(PAGES);
    expect(html.split(`<p dir="auto">${PAGE_TEXT}</p>`)).toHaveLength(PAGES + 1);
  });

  it('downloads an EPUB that epubcheck passes with no error or warning', { timeout: 180_000 }, async (context) => {
    skipWithoutTool(epubcheck, context);
    expect(tools.epub).toBe(true);
    const { response, bytes } = await download(story.epubUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/epub+zip');
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="story-[0-9a-f]{8}\.epub"; filename\*=UTF-8''.+\.epub$/);
    const report = await runEpubcheck(bytes);
    expect({ fatals: report.fatals, errors: report.errors, warnings: report.warnings }, report.output).toEqual({ fatals: 0, errors: 0, warnings: 0 });
  });

  it('downloads an A5 PDF: a title page and one page per book page, the text extractable, every font embedded', { timeout: 30_000 }, async (context) => {
    skipWithoutTool(poppler, context);
    expect(tools.pdf).toBe(true);
    const { response, bytes } = await download(story.pdfUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/pdf');
    expect(await pdfInfo(bytes)).toMatchObject({ Pages: String(PAGES + 1), 'Page size': '419.53 x 595.28 pts', Title: TITLE });
    const texts = await pdfPageTexts(bytes);
    for (const page of texts.slice(1)) expect(withoutWhitespace(page)).toContain(withoutWhitespace(PAGE_TEXT));
    expect((await pdfFonts(bytes)).filter((font) => !font.embedded)).toEqual([]);
  });

  it('answers 404 with a clear message for a story that does not exist, and for what is not an export', async () => {
    const id = randomUUID();
    const { response, bytes } = await download(`${server.url}/export/${id}.pdf`);
    expect(response.status).toBe(404);
    expect(JSON.parse(bytes.toString('utf8'))).toEqual({
      errors: [{ message: `No story has the id ${id}: it may have been deleted.`, extensions: { code: 'NOT_FOUND' } }],
    });
    expect((await download(`${server.url}/export/${story.id}.docx`)).response.status).toBe(404);
  });

  it('still exports a book whose picture file is gone: that page is text only', async () => {
    // A book not downloaded before: the suite's book is in the server's cache of rendered files, whose key is what the database says.
    const lost = await makeBook(server);
    const page = lost.pages[1];
    const key = new URL(page.combinedImage!.url).pathname.replace(/^\/media\//, '');
    await fs.rm(path.join(server.dataDir, 'media', key));
    const { response, bytes } = await download(lost.htmlUrl);
    expect(response.status).toBe(200);
    expect(bytes.toString('utf8').match(/<img /g)).toHaveLength(PAGES - 1);
  });
});

describe('exportUrl with AUTH_MODE=api-key', () => {
  let server: TestServer;
  let alice: TestClient;
  let story: StoryFieldsFragment;

  beforeAll(async () => {
    server = await startTestServer({
      env: {
        AUTH_MODE: 'api-key',
        OLLAMA_BASE_URL: ollama.url,
        AUTOMATIC1111_URL: a1111.url,
        IMAGE_WIDTH: '64',
        IMAGE_HEIGHT: '64',
        EXPORT_PDF_PAGE_SIZE: 'LETTER',
        RATE_LIMIT_PER_MINUTE: '8',
      },
    });
    alice = createTestClient(server.url, { apiKey: await createApiKey(server.database.url, 'alice') });
    story = await makeBook(alice);
  }, 60_000);

  afterAll(async () => {
    await alice?.close();
    await server?.stop();
  });

  it('signs the link, which downloads without a header; a changed, missing or expired signature is refused', async (context) => {
    skipWithoutTool(poppler, context);
    const signed = new URL(story.pdfUrl, server.url);
    expect(signed.pathname).toBe(`/export/${story.id}.pdf`);
    expect(signed.searchParams.get('signature')).toMatch(/^[\w-]{43}$/);
    const ok = await fetch(signed);
    expect(ok.status).toBe(200);
    expect(await pdfInfo(Buffer.from(await ok.arrayBuffer()))).toMatchObject({ 'Page size': '612 x 792 pts (letter)' });

    const refused = async (url: URL) => {
      const response = await fetch(url);
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({
        errors: [{ message: 'This download link has expired or is not valid; load the story again for a fresh one.', extensions: { code: 'FORBIDDEN' } }],
      });
    };
    const tampered = new URL(signed);
    tampered.searchParams.set('signature', `${signed.searchParams.get('signature')!.slice(0, -2)}AA`);
    await refused(tampered);
    const unsigned = new URL(signed.pathname, server.url);
    await refused(unsigned);
    const expired = new URL(signed);
    expired.searchParams.set('expires', String(Math.floor(Date.now() / 1000) - 60));
    await refused(expired);
    // A link for one format does not open another.
    const otherFormat = new URL(signed);
    otherFormat.pathname = `/export/${story.id}.epub`;
    await refused(otherFormat);
  });

  it('counts downloads against RATE_LIMIT_PER_MINUTE, apart from GraphQL requests', { timeout: 30_000 }, async () => {
    const statuses: number[] = [];
    // 9 downloads are one more than the limit of 8, whatever the tests before used of it.
    for (let i = 0; i < 9; i++) statuses.push((await fetch(new URL(story.htmlUrl, server.url))).status);
    expect(statuses.at(-1)).toBe(429);
    const limited = await fetch(new URL(story.htmlUrl, server.url));
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('RATE_LIMITED');
    // GraphQL has a limit of its own.
    expect((await alice.query(StoryDocument, { id: story.id })).story?.id).toBe(story.id);
  });
});
