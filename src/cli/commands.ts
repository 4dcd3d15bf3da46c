import fs from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import {
  CancelGenerationDocument,
  DeleteStoryDocument,
  type ExportFormat,
  GenerationSessionsDocument,
  type GenerationStatus,
  RegeneratePageImageDocument,
  StartGenerationDocument,
  StoryDocument,
  StoryExportDocument,
  StoryListPageDocument,
  UpdatePageTextDocument,
  type StoryFieldsFragment,
  type WarningFieldsFragment,
} from '../client/generated/graphql.js';
import { ErrorCode } from '../client/error-codes.js';
import { createGraphQLClient, GraphQLRequestError, ServerUnreachableError, type GraphQLClient } from '../client/graphql-client.js';
import { withoutControlSequences } from './terminal-text.js';
import { followProgress, ProgressStreamError, type ProgressState } from '../client/progress.js';
import { paragraphs, storyFileName, storyPictures } from '../client/story-html.js';
import { createProgressDisplay, type OutputStream, type ProgressDisplay } from './progress-display.js';

/** Exit codes: 0 done, 1 the server or generation failed, 2 bad input, 130 interrupted (Ctrl+C). */
export const EXIT = { ok: 0, failed: 1, badInput: 2, interrupted: 130 } as const;

export interface Io {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Asks a yes/no question; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
  /** stdout as it is (no control sequences removed), for a file's bytes: `export --output -`. */
  stdoutBytes: { write(chunk: Uint8Array): boolean };
}

/** An error whose message is for the user as it stands, with the exit code to use. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** `apiKey`: --api-key or STORY_AGENT_API_KEY, for a server with AUTH_MODE=api-key. */
export function connect(url: string, apiKey: string | null = null): GraphQLClient {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`--url must be an http(s) address such as http://localhost:4000, not "${url}".`, EXIT.badInput);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(`--url must be an http(s) address such as http://localhost:4000, not "${url}".`, EXIT.badInput);
  }
  return createGraphQLClient({ baseUrl: parsed.href.replace(/\/graphql\/?$/, ''), apiKey: () => apiKey });
}

/** GraphQL and network errors as CliErrors with the server's message. */
export function asCliError(error: unknown, url: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof GraphQLRequestError && error.code === ErrorCode.PAYLOAD_TOO_LARGE) {
    return new CliError(`Prompt too long: the server refused the request as too large (${error.message})`, EXIT.badInput);
  }
  if (error instanceof GraphQLRequestError && error.code === ErrorCode.UNAUTHENTICATED) {
    return new CliError(`The server at ${url} needs an API key: pass --api-key or set STORY_AGENT_API_KEY.`, EXIT.badInput);
  }
  if (error instanceof GraphQLRequestError) return new CliError(error.message, error.code === ErrorCode.BAD_USER_INPUT ? EXIT.badInput : EXIT.failed);
  if (error instanceof ServerUnreachableError) {
    return new CliError(`Cannot reach Story Agent at ${url}: start it with \`npm start\`, or pass --url to where it runs.`);
  }
  if (error instanceof ProgressStreamError) return new CliError(error.message);
  return new CliError(error instanceof Error ? error.message : String(error));
}

export interface GenerateOptions {
  style?: string;
  seed?: number;
  /** Pages in the book (1–12); the server's default (1) when absent. */
  pages?: number;
  out?: string;
}

function webSocketUrl(client: GraphQLClient): string {
  return client.endpoint.replace(/^http/, 'ws');
}

/**
 * The story with this id; a CliError saying there is none, exiting `missingExit`: EXIT.badInput for an
 * id the user typed (as the server's BAD_USER_INPUT for `delete`), EXIT.failed for one the server gave.
 */
async function fetchStory(client: GraphQLClient, id: string, missingExit: number): Promise<StoryFieldsFragment> {
  const { story } = await client.request(StoryDocument, { id });
  if (!story) throw new CliError(`No story has the id ${id}.`, missingExit);
  return story;
}

/** `generate PROMPT`: start, stream the story to stdout, save the pictures into --out. */
export async function generate(client: GraphQLClient, prompt: string, options: GenerateOptions, io: Io): Promise<number> {
  const { startGeneration: session } = await client.request(StartGenerationDocument, {
    input: { prompt, style: options.style ?? null, seed: options.seed ?? null, pageCount: options.pages ?? null },
  });
  io.stderr.write(`Generation ${session.id} started at ${client.baseUrl}.\n`);
  return follow(client, session.id, { out: options.out, cancelOnInterrupt: true }, io);
}

/**
 * `follow SESSION`: the live progress of a generation (one started here, or
 * one found with `sessions`), then the story as `generate` gives it. Ctrl+C
 * cancels the generation with `cancelOnInterrupt`; otherwise it only stops following.
 */
export async function follow(client: GraphQLClient, sessionId: string, options: { out?: string; cancelOnInterrupt?: boolean }, io: Io): Promise<number> {
  const cancelOnInterrupt = options.cancelOnInterrupt ?? false;
  const display = createProgressDisplay(io.stdout, io.stderr);
  const { final, interrupted } = await followSession(client, sessionId, display, { cancelOnInterrupt });
  if (interrupted && !cancelOnInterrupt) {
    io.stderr.write(`Stopped following; the generation goes on (story-agent follow ${sessionId}).\n`);
    return EXIT.interrupted;
  }

  writeWarnings(final.warningDetails, io);
  if (final.status === 'FAILED') {
    throw new CliError(`The generation failed: ${final.errorMessage ?? 'the server gave no reason.'}`);
  }
  if (final.status === 'CANCELLED' || interrupted) {
    io.stderr.write('The generation was cancelled.\n');
    return interrupted ? EXIT.interrupted : EXIT.failed;
  }
  if (!final.storyId) throw new CliError('The generation completed without a story; see the server log.');

  const story = await fetchStory(client, final.storyId, EXIT.failed);
  io.stderr.write(`“${withoutControlSequences(story.title)}” is story ${story.id}.\n`);
  if (options.out) {
    for (const saved of await saveStory(client, story, options.out)) io.stderr.write(`Saved ${saved}\n`);
  } else {
    for (const { image } of storyPictures(story)) io.stderr.write(`${image.imageType.toLowerCase()}: ${client.resolve(image.url)}\n`);
    if (story.images.length) io.stderr.write('(pass --out DIR to save the pictures)\n');
  }
  return EXIT.ok;
}

/**
 * One line on stderr per warning, for people and for grep alike:
 * `warning [SCENE_NOT_PAINTED] page 2: <message>` (the code is the API's WarningCode;
 * `page N`, 1-based, only for a warning about one page).
 */
function writeWarnings(warnings: readonly WarningFieldsFragment[], io: Io): void {
  for (const { code, message, pageIndex } of warnings) {
    const page = pageIndex === null ? '' : ` page ${pageIndex + 1}`;
    io.stderr.write(`warning [${code}]${page}: ${withoutControlSequences(message)}\n`);
  }
}

/**
 * Follows a session's progress into the display until it ends. With
 * `cancelOnInterrupt` the first Ctrl+C cancels it on the server and a second
 * leaves at once; without, Ctrl+C only stops following. `interrupted`: the user pressed Ctrl+C.
 */
async function followSession(
  client: GraphQLClient,
  sessionId: string,
  display: ProgressDisplay,
  { cancelOnInterrupt }: { cancelOnInterrupt: boolean },
): Promise<{ final: ProgressState; interrupted: boolean }> {
  let interrupted = false;
  const follower = followProgress({
    url: webSocketUrl(client),
    sessionId,
    webSocketImpl: WebSocket,
    connectionParams: () => client.connectionParams(),
    maxRetries: 8,
    onEvent: (_event, { state }) => display.update(state),
    onConnectionLost: ({ attempt, delayMs, reason }) => display.note(`Lost the connection (${reason}); reconnecting in ${delayMs} ms (try ${attempt}).`),
    onReconnected: () => display.note('Reconnected; resuming.'),
  });

  const onSigint = () => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    if (!cancelOnInterrupt) {
      follower.stop();
      return;
    }
    display.note('Cancelling… (Ctrl+C again to leave without waiting)');
    client.request(CancelGenerationDocument, { id: sessionId }).catch((error: unknown) => {
      display.note(`Could not cancel: ${asCliError(error, client.baseUrl).message}`);
      follower.stop();
    });
  };
  process.on('SIGINT', onSigint);

  let final: ProgressState;
  try {
    final = await follower.done;
  } catch (error) {
    display.finish();
    throw asCliError(error, client.baseUrl);
  } finally {
    process.off('SIGINT', onSigint);
  }
  display.finish();
  return { final, interrupted };
}

/** The story's page as a user counts it (1-based, as --page takes it); a CliError naming the range otherwise. */
async function pageOf(client: GraphQLClient, id: string, page: number): Promise<{ story: StoryFieldsFragment; pageIndex: number }> {
  const story = await fetchStory(client, id, EXIT.badInput);
  if (page < 1 || page > story.pages.length) {
    const range = story.pages.length === 1 ? 'it has one page: --page 1' : `it has ${story.pages.length} pages: --page 1 to ${story.pages.length}`;
    throw new CliError(`Story ${id} has no page ${page}; ${range}.`, EXIT.badInput);
  }
  return { story, pageIndex: page - 1 };
}

export interface RepaintOptions {
  /** 1-based, as people count pages. */
  page: number;
  seed?: number;
  redescribe?: boolean;
}

/** `repaint ID --page N`: paints one page again (the API's regeneratePageImage), following its progress as generate does. */
export async function repaint(client: GraphQLClient, id: string, options: RepaintOptions, io: Io): Promise<number> {
  const { story, pageIndex } = await pageOf(client, id, options.page);
  const { regeneratePageImage: session } = await client.request(RegeneratePageImageDocument, {
    storyId: story.id,
    pageIndex,
    seed: options.seed ?? null,
    redescribe: options.redescribe ?? false,
  });
  const display = createProgressDisplay(io.stdout, io.stderr);
  display.note(`Painting page ${options.page} of “${withoutControlSequences(story.title)}” again (session ${session.id}).`);
  const { final, interrupted } = await followSession(client, session.id, display, { cancelOnInterrupt: true });
  writeWarnings(final.warningDetails, io);
  if (final.status === 'FAILED') throw new CliError(`Painting page ${options.page} again failed: ${final.errorMessage ?? 'the server gave no reason.'}`);
  if (final.status === 'CANCELLED' || interrupted) {
    io.stderr.write(`Painting page ${options.page} again was cancelled; the page is as it was.\n`);
    return interrupted ? EXIT.interrupted : EXIT.failed;
  }
  const page = (await fetchStory(client, story.id, EXIT.failed)).pages[pageIndex];
  const image = page?.combinedImage ?? page?.backgroundImage;
  io.stderr.write(`Page ${options.page} is painted again.\n`);
  if (image) io.stdout.write(`${client.resolve(image.url)}\n`);
  return EXIT.ok;
}

/** `edit ID --page N --text …`: replaces one page's text (the API's updatePageText). */
export async function edit(client: GraphQLClient, id: string, options: { page: number; text: string }, io: Io): Promise<number> {
  const { story, pageIndex } = await pageOf(client, id, options.page);
  await client.request(UpdatePageTextDocument, { storyId: story.id, pageIndex, text: options.text });
  io.stderr.write(
    `Saved the text of page ${options.page}. Its picture is unchanged; to paint it to match: story-agent repaint ${story.id} --page ${options.page} --redescribe\n`,
  );
  return EXIT.ok;
}

/** `delete ID`: deletes the story with its pictures. */
export async function deleteStory(client: GraphQLClient, id: string, io: Io): Promise<number> {
  const { deleteStory: deleted } = await client.request(DeleteStoryDocument, { id });
  if (!deleted) throw new CliError(`No story has the id ${id}.`, EXIT.badInput);
  io.stderr.write(`Deleted story ${id}.\n`);
  return EXIT.ok;
}

/**
 * Writes the text and the pictures of a story into `dir`; returns the paths
 * written. A one-page story gets `<title>-combined.png`, `-character.png` and
 * `-background.png`; a book gets `page-01.png` … (each page's illustration, or
 * its scene where the character could not be placed) and `<title>-character.png`.
 */
async function saveStory(client: GraphQLClient, story: StoryFieldsFragment, dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const base = storyFileName(story, '').replace(/\.$/, '');
  const written: string[] = [];
  const textPath = path.join(dir, `${base}.txt`);
  await fs.writeFile(textPath, `${story.title}\n\n${story.storyText}\n`);
  written.push(textPath);
  const files =
    story.pages.length > 1
      ? [
          ...story.pages.flatMap((page) => {
            const image = page.combinedImage ?? page.backgroundImage;
            return image ? [{ image, name: `page-${String(page.index + 1).padStart(2, '0')}.png` }] : [];
          }),
          ...(story.characterImage ? [{ image: story.characterImage, name: `${base}-character.png` }] : []),
        ]
      : storyPictures(story).map(({ image }) => ({ image, name: `${base}-${image.imageType.toLowerCase()}.png` }));
  for (const { image, name } of files) {
    const url = client.resolve(image.url);
    const response = await fetch(url).catch(() => null);
    if (!response?.ok)
      throw new CliError(`Could not download the ${image.imageType.toLowerCase()} picture from ${url}${response ? ` (HTTP ${response.status})` : ''}.`);
    const file = path.join(dir, name);
    await fs.writeFile(file, Buffer.from(await response.arrayBuffer()));
    written.push(file);
  }
  return written;
}

/**
 * `list`: newest first, one story a line: id, date, title; `limit` a page
 * (1–100) from the cursor `after`, or every page with `all`. When more
 * follow, stderr says how to read on (`--after <cursor>`).
 */
export async function list(client: GraphQLClient, options: { limit: number; after?: string; all?: boolean; json?: boolean }, io: Io): Promise<number> {
  const stories = [];
  let after = options.after ?? null;
  let more: string | null = null;
  let totalCount = 0;
  do {
    const { storyConnection } = await client.request(StoryListPageDocument, { first: Math.min(options.limit, 100), after });
    stories.push(...storyConnection.edges.map((edge) => edge.node));
    totalCount = storyConnection.totalCount;
    more = storyConnection.pageInfo.hasNextPage ? (storyConnection.pageInfo.endCursor ?? null) : null;
    after = more;
  } while (options.all && more !== null);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(stories, null, 2)}\n`);
  } else if (stories.length === 0) {
    io.stderr.write(options.after ? 'No more stories.\n' : 'No stories yet: make one with `story-agent generate "a prompt"`.\n');
  } else {
    for (const story of stories) io.stdout.write(`${story.id}  ${formatDate(story.createdAt)}  ${story.title}\n`);
  }
  if (more !== null) io.stderr.write(`${stories.length} of ${totalCount} shown; more: story-agent list --after ${more}\n`);
  return EXIT.ok;
}

const RUNNING: GenerationStatus[] = ['PENDING', 'GENERATING_STORY', 'GENERATING_IMAGES'];

/** `sessions`: generations newest first (only the running ones unless `all`): id, date, status, percentage, stage, prompt. */
export async function sessions(client: GraphQLClient, options: { all?: boolean; limit: number; json?: boolean }, io: Io): Promise<number> {
  const { generationSessions } = await client.request(GenerationSessionsDocument, {
    status: options.all ? null : RUNNING,
    first: Math.min(options.limit, 100),
  });
  const found = generationSessions.edges.map((edge) => edge.node);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
    return EXIT.ok;
  }
  if (found.length === 0) {
    io.stderr.write(options.all ? 'No generations yet.\n' : 'No generation is running (--all lists the finished ones too).\n');
    return EXIT.ok;
  }
  for (const session of found) {
    const prompt = session.prompt.length > 60 ? `${session.prompt.slice(0, 59)}…` : session.prompt;
    io.stdout.write(
      `${session.id}  ${formatDate(session.createdAt)}  ${session.status.padEnd(17)}  ${String(session.progressPercentage).padStart(3)}%  ${session.stageCode ?? '-'}  ${prompt}\n`,
    );
  }
  if (found.some((session) => RUNNING.includes(session.status))) io.stderr.write('Follow one with: story-agent follow <id>\n');
  return EXIT.ok;
}

/**
 * The pictures `show` lists as [label, URL]: a one-page story's combined, character and background
 * pictures; a book's character, then each page's picture (its composite, else its scene) as "page N".
 */
function pictureLines(story: StoryFieldsFragment): [string, string][] {
  if (story.pages.length <= 1) return storyPictures(story).map(({ image }) => [image.imageType.toLowerCase(), image.url]);
  const lines: [string, string][] = story.characterImage ? [['character', story.characterImage.url]] : [];
  for (const page of story.pages) {
    const image = page.combinedImage ?? page.backgroundImage;
    if (image) lines.push([`page ${page.index + 1}`, image.url]);
  }
  return lines;
}

/** `show ID`: title, text, prompt and picture URLs (for a book, every page's). */
export async function show(client: GraphQLClient, id: string, options: { json?: boolean }, io: Io): Promise<number> {
  const story = await fetchStory(client, id, EXIT.badInput);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(story, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [
    story.title,
    '='.repeat(Math.min(story.title.length, 80)),
    '',
    paragraphs(story.storyText).join('\n\n'),
    '',
    `Prompt:  ${story.prompt}`,
    `Written: ${formatDate(story.createdAt)}`,
    `Id:      ${story.id}`,
    ...pictureLines(story).map(([label, url]) => `${label.padEnd(10)} ${client.resolve(url)}`),
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

/** The formats `export --format` takes, with the API's name for each. */
export const EXPORT_FORMATS: Record<string, ExportFormat> = { html: 'HTML', epub: 'EPUB', pdf: 'PDF' };

/**
 * `export ID --format html|epub|pdf`: downloads the book as one file from the story's
 * exportUrl and writes it to --output (default: `<title>.<format>` here; "-": stdout).
 */
export async function exportStory(client: GraphQLClient, id: string, options: { format: string; output?: string }, io: Io): Promise<number> {
  const format = EXPORT_FORMATS[options.format];
  if (!format) throw new CliError(`Unknown format "${options.format}": use html, epub or pdf.`, EXIT.badInput);
  const { story } = await client.request(StoryExportDocument, { id, format });
  if (!story) throw new CliError(`No story has the id ${id}.`, EXIT.badInput);
  const url = client.resolve(story.exportUrl);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new CliError(`Could not download ${url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!response.ok) throw new CliError(`The server refused the download (HTTP ${response.status}): ${await errorMessageOf(response)}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (options.output === '-') {
    io.stdoutBytes.write(bytes);
    return EXIT.ok;
  }
  const file = options.output ?? storyFileName(story, options.format);
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, bytes);
  io.stderr.write(`Saved ${file} (${formatBytes(bytes.length)})\n`);
  return EXIT.ok;
}

/** The message of a JSON error body in the GraphQL error shape, else the body's start. */
async function errorMessageOf(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const message = (JSON.parse(text) as { errors?: { message?: string }[] }).errors?.[0]?.message;
    if (message) return message;
  } catch {
    // Not JSON: the text itself says what happened.
  }
  return text.slice(0, 200) || response.statusText;
}

function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function formatDate(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
