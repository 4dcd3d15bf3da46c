import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(root, 'bin/story-agent.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `story-agent` (bin/story-agent.js, compiled) as a user runs it: a child process, no colour, and
 * none of this machine's STORY_AGENT_URL / STORY_AGENT_API_KEY unless the test sets them. `onStdout` sees
 * its standard output so far each time more arrives, for a test to act at a point of the run.
 */
export function runStoryAgent(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; onStdout?: (soFar: string) => void } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, NO_COLOR: '1', STORY_AGENT_URL: '', STORY_AGENT_API_KEY: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
