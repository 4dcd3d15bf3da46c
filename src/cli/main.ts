import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PROJECT_ROOT } from '../project-root.js';
import { cleanedStream, withoutControlSequences } from './terminal-text.js';
import { createInterface } from 'node:readline/promises';
import { setup, status } from './setup-commands.js';
import {
  asCliError,
  connect,
  deleteStory,
  edit,
  EXIT,
  EXPORT_FORMATS,
  exportStory,
  follow,
  generate,
  list,
  repaint,
  sessions,
  show,
  type Io,
  type RepaintOptions,
} from './commands.js';

/**
 * `story-agent`: the command line on the typed client. Run through bin/story-agent.js
 * (`npx story-agent …`); talks to a running server (`npm start`) at --url.
 */

const DEFAULT_URL = process.env.STORY_AGENT_URL || 'http://localhost:4000';

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The most pages a book has (the API's pageCount, 1 to 12). */
const MAX_PAGES = 12;
/** The largest seed the API takes: a GraphQL Int. */
const MAX_SEED = 2 ** 31 - 1;

/** An option's parser: a whole number from min (to max when given); otherwise an error naming the option. */
function integer(name: string, min: number, max?: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || (max !== undefined && parsed > max)) {
      throw new InvalidArgumentError(
        max === undefined ? `${name} must be a whole number of at least ${min}.` : `${name} must be a whole number from ${min} to ${max}.`,
      );
    }
    return parsed;
  };
}

export function createProgram(io: Io, setExitCode: (code: number) => void): Command {
  const program = new Command('story-agent')
    .description('Write an illustrated story from one prompt, with a Story Agent server.')
    .version(version())
    .addOption(new Option('--url <url>', 'the Story Agent server').default(DEFAULT_URL, 'http://localhost:4000, or $STORY_AGENT_URL'))
    .addOption(new Option('--api-key <key>', 'API key for a server with AUTH_MODE=api-key').env('STORY_AGENT_API_KEY'))
    .showHelpAfterError()
    // Usage errors throw (see main) instead of exiting; set before the subcommands so they inherit it.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  /** Runs a command body with the server at --url; errors become a message and an exit code. */
  const action =
    <A extends unknown[]>(body: (client: ReturnType<typeof connect>, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const command = args.at(-1) as Command;
      const { url, apiKey } = command.optsWithGlobals() as { url: string; apiKey?: string };
      try {
        setExitCode(await body(connect(url, apiKey ?? null), ...args));
      } catch (error) {
        const cliError = asCliError(error, url);
        io.stderr.write(`story-agent: ${withoutControlSequences(cliError.message)}\n`);
        setExitCode(cliError.exitCode);
      }
    };

  program
    .command('generate')
    .description('write and illustrate a story; the text streams to stdout, progress to stderr')
    .argument('<prompt>', 'what the story is about, e.g. "a lighthouse keeper who befriends a storm"')
    .option('-s, --style <style>', 'art style for the pictures, e.g. watercolor')
    .option('--seed <n>', 'seed for reproducible pictures', integer('--seed', 0, MAX_SEED))
    .option('-p, --pages <n>', `pages in the book, 1 to ${MAX_PAGES} (default 1: one scene)`, integer('--pages', 1, MAX_PAGES))
    .option('-o, --out <dir>', 'save the story text and the pictures (page-01.png … for a book) into this folder')
    .addHelpText('after', '\nExit status: 0 done (warnings go to stderr), 1 failed or cancelled, 2 bad input, 130 interrupted.')
    .action(
      action(async (client, prompt: string, options: { style?: string; seed?: number; pages?: number; out?: string }) => generate(client, prompt, options, io)),
    );

  program
    .command('list')
    .description('list the stories, newest first: id, date, title')
    .option('-n, --limit <n>', 'how many (at most 100 a page)', integer('--limit', 1), 20)
    .option('--after <cursor>', 'start after this place in the list (printed when more follow)')
    .option('--all', 'every story, page by page')
    .option('--json', 'print JSON')
    .action(action(async (client, options: { limit: number; after?: string; all?: boolean; json?: boolean }) => list(client, options, io)));

  program
    .command('sessions')
    .description('list the generations still running (a book whose terminal or tab was closed), newest first')
    .option('-a, --all', 'finished ones too')
    .option('-n, --limit <n>', 'how many (at most 100)', integer('--limit', 1), 20)
    .option('--json', 'print JSON')
    .action(action(async (client, options: { all?: boolean; limit: number; json?: boolean }) => sessions(client, options, io)));

  program
    .command('follow')
    .description('follow a running generation to its end, as generate does (Ctrl+C stops following; the generation goes on)')
    .argument('<session-id>', 'the generation (see `story-agent sessions`)')
    .option('-o, --out <dir>', 'save the story text and the pictures into this folder')
    .action(action(async (client, id: string, options: { out?: string }) => follow(client, id, options, io)));

  program
    .command('show')
    .description('print one story: title, text, prompt and picture URLs')
    .argument('<id>', 'the story id (see `story-agent list`)')
    .option('--json', 'print JSON')
    .action(action(async (client, id: string, options: { json?: boolean }) => show(client, id, options, io)));

  program
    .command('export')
    .description('save a book as one file: html (self-contained, pictures embedded), epub (e-readers) or pdf (print)')
    .argument('<id>', 'the story id (see `story-agent list`)')
    .addOption(new Option('-f, --format <format>', 'file format').choices(Object.keys(EXPORT_FORMATS)).default('html'))
    .option('-o, --output <file>', 'where to write it ("-" for stdout); default: <title>.<format> here')
    .addOption(new Option('--out <file>', 'the same as --output').hideHelp())
    .action(
      action(async (client, id: string, options: { format: string; output?: string; out?: string }) =>
        exportStory(client, id, { format: options.format, output: options.output ?? options.out }, io),
      ),
    );

  // Pages are counted from 1 here, as the page and the book show them; the API counts from 0 (pageIndex).
  const pageHelp = 'the page, counted from 1 as the book shows it (the API counts from 0)';

  program
    .command('repaint')
    .description("paint one page of a book again (its scene, then the book's same character placed in it); progress on stderr")
    .argument('<id>', 'the story id (see `story-agent list`)')
    .requiredOption('--page <n>', pageHelp, integer('--page', 1))
    .option('--seed <n>', 'seed for the new scene (default: a new random one)', integer('--seed', 0, MAX_SEED))
    .option('--redescribe', "first write the scene's description again from the page's current text")
    .addHelpText(
      'after',
      "\nPrints the new picture's URL. Exit status: 0 done, 1 failed or cancelled (the page is left as it was), 2 bad input, 130 interrupted.",
    )
    .action(action(async (client, id: string, options: RepaintOptions) => repaint(client, id, options, io)));

  program
    .command('edit')
    .description("replace the text of one page of a book (1 to 4000 characters); the page's picture is left as it is")
    .argument('<id>', 'the story id (see `story-agent list`)')
    .requiredOption('--page <n>', pageHelp, integer('--page', 1))
    .requiredOption('--text <text>', 'the new text of the page')
    .action(action(async (client, id: string, options: { page: number; text: string }) => edit(client, id, options, io)));

  program
    .command('delete')
    .description('delete a story with its pictures (no undo)')
    .argument('<id>', 'the story id (see `story-agent list`)')
    .action(action(async (client, id: string) => deleteStory(client, id, io)));
  program
    .command('status')
    .description('what the server has ready: story model, picture model, database, and what fixes what is missing')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExit status: 0 everything ready (or switched off), 1 something is missing.')
    .action(action(async (client, options: { json?: boolean }) => status(client, options, io)));

  program
    .command('setup')
    .description('download what is missing (story model, picture model), showing each size and licence first')
    .option('-y, --yes', 'accept the licences shown and download without asking (needed without a terminal)')
    .addHelpText('after', '\nExit status: 0 everything ready, 1 a download failed or something needs starting by hand, 2 not confirmed without a terminal.')
    .action(action(async (client, options: { yes?: boolean }) => setup(client, options, io)));

  return program;
}

/** A yes/no question on the terminal; only when stdin is one. */
function terminalConfirm(): ((question: string) => Promise<boolean>) | undefined {
  if (!process.stdin.isTTY) return undefined;
  return async (question) => {
    const prompt = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return /^y(es)?$/i.test((await prompt.question(question)).trim());
    } finally {
      prompt.close();
    }
  };
}

async function main(): Promise<void> {
  // stderr carries the progress bar's own codes; what the server sent is cleaned where it is written there.
  const io: Io = { stdout: cleanedStream(process.stdout), stderr: process.stderr, stdoutBytes: process.stdout, confirm: terminalConfirm() };
  let exitCode: number = EXIT.ok;
  const program = createProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help and --version end with 0; usage errors (already explained on stderr) with 2.
    exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.badInput;
  }
  // Open sockets or timers must not keep a finished command alive; let piped output drain first.
  await Promise.all([io.stdout, io.stderr].map((stream) => new Promise<void>((resolve) => stream.write('', () => resolve()))));
  process.exit(exitCode);
}

main().catch((error: unknown) => {
  process.stderr.write(`story-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT.failed);
});
