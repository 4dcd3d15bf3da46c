import cliProgress from 'cli-progress';
import type { ProgressState } from '../client/progress.js';
import { withoutControlSequences } from './terminal-text.js';

/**
 * What `story-agent generate` shows while it waits: the story on stdout as it
 * is written, the stage and percentage on stderr.
 *
 * - Both streams on a terminal: a cli-progress bar on the bottom line, the story
 *   above it, wrapped into whole lines so the bar never cuts a line in two.
 * - stdout piped or redirected: the text goes out exactly as streamed; stderr gets
 *   the bar when it is a terminal, or one line per stage when it is not.
 */

export interface OutputStream {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressDisplay {
  /** Shows the state: new story text and the bar or stage line. */
  update(state: ProgressState): void;
  /** Ends the bar and the story (with a newline); further output is plain lines on stderr. */
  finish(): void;
  /** A line on stderr (above the bar while it runs). */
  note(line: string): void;
}

export function createProgressDisplay(stdout: OutputStream, stderr: OutputStream): ProgressDisplay {
  const interactive = Boolean(stdout.isTTY && stderr.isTTY);
  const wrapper = interactive ? new LineWrapper(Math.max(20, Math.min((stdout.columns ?? 80) - 1, 100))) : null;
  let bar: cliProgress.SingleBar | null = null;
  let lastStageLine = '';
  let printed = '';
  let finished = false;
  let textEndsWithNewline = true;

  if (stderr.isTTY) {
    bar = new cliProgress.SingleBar(
      {
        stream: stderr as NodeJS.WriteStream,
        format: '{bar} {percentage}% | {stage}',
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        gracefulExit: false,
        // The bar is redrawn after story lines are printed over it.
        forceRedraw: interactive,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { stage: 'Starting' });
  }

  /** Prints lines on top of the bar (or just prints them when there is none). */
  const aboveBar = (write: () => void) => {
    if (bar && interactive && !finished) stderr.write('\r\x1b[2K');
    write();
    if (bar && interactive && !finished) bar.render();
  };

  const writeText = (text: string) => {
    if (!text) return;
    if (wrapper) {
      const lines = wrapper.push(text);
      if (lines.length) aboveBar(() => stdout.write(lines.map((line) => `${line}\n`).join('')));
    } else {
      stdout.write(text);
      textEndsWithNewline = text.endsWith('\n');
    }
  };

  return {
    update(state) {
      if (state.text.startsWith(printed)) {
        writeText(state.text.slice(printed.length));
      } else {
        // The server started the story over (e.g. after a restart before it was saved).
        writeText(`${printed.endsWith('\n') || !printed ? '' : '\n'}\n[the story was started again]\n\n${state.text}`);
      }
      printed = state.text;

      const stage = withoutControlSequences(state.stage ?? state.status.toLowerCase().replace(/_/g, ' '));
      if (bar) {
        bar.update(state.percent, { stage });
      } else {
        const line = `[${String(state.percent).padStart(3)}%] ${stage}`;
        if (line !== lastStageLine) {
          lastStageLine = line;
          stderr.write(`${line}\n`);
        }
      }
    },
    finish() {
      if (finished) return;
      if (wrapper) {
        const rest = wrapper.flush();
        if (rest) aboveBar(() => stdout.write(`${rest}\n`));
      } else if (!textEndsWithNewline) {
        stdout.write('\n');
        textEndsWithNewline = true;
      }
      finished = true;
      if (bar) {
        // stop() restores the cursor saved at start(), which is lines above by now: save it here instead.
        stderr.write('\x1b7');
        bar.stop();
      }
    },
    note(line) {
      aboveBar(() => stderr.write(`${line}\n`));
    },
  };
}

/** Cuts streamed text into lines of at most `width` characters, at spaces where it can. */
class LineWrapper {
  private pending = '';

  constructor(private readonly width: number) {}

  /** Adds text; returns the lines that are now complete. */
  push(text: string): string[] {
    this.pending += text;
    const lines: string[] = [];
    for (;;) {
      const newline = this.pending.indexOf('\n');
      if (newline >= 0 && newline <= this.width) {
        lines.push(this.pending.slice(0, newline));
        this.pending = this.pending.slice(newline + 1);
        continue;
      }
      if (this.pending.length <= this.width) break;
      const space = this.pending.lastIndexOf(' ', this.width);
      const cut = space > 0 ? space : this.width;
      lines.push(this.pending.slice(0, cut).trimEnd());
      this.pending = this.pending.slice(space > 0 ? cut + 1 : cut);
    }
    return lines;
  }

  /** What is left of the last line. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }
}
