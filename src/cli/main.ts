import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PROJECT_ROOT } from '../project-root.js';
import { cleanedStream, withoutControlSequences } from './terminal-text.js';
import { asCliError, connect, EXIT, EXPORT_FORMATS, exportStory, generate, list, show, type Io } from './commands.js';

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

function integer(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}.`);
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
    .option('--seed <n>', 'seed for reproducible pictures', integer('--seed', 0))
    .option('-p, --pages <n>', 'pages in the book, 1 to 12 (default 1: one scene)', integer('--pages', 1))
    .option('-o, --out <dir>', 'save the story text and the pictures (page-01.png … for a book) into this folder')
    .addHelpText('after', '\nExit status: 0 done (warnings go to stderr), 1 failed or cancelled, 2 bad input, 130 interrupted.')
    .action(
      action(async (client, prompt: string, options: { style?: string; seed?: number; pages?: number; out?: string }) => generate(client, prompt, options, io)),
    );

  program
    .command('list')
    .description('list the stories, newest first: id, date, title')
    .option('-n, --limit <n>', 'how many', integer('--limit', 1), 20)
    .option('--offset <n>', 'skip this many', integer('--offset', 0), 0)
    .option('--json', 'print JSON')
    .action(action(async (client, options: { limit: number; offset: number; json?: boolean }) => list(client, options, io)));

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

  return program;
}

async function main(): Promise<void> {
  // stderr carries the progress bar's own codes; what the server sent is cleaned where it is written there.
  const io: Io = { stdout: cleanedStream(process.stdout), stderr: process.stderr, stdoutBytes: process.stdout };
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
