/**
 * Start-up time: from spawning `npm start`'s process to its "Story Agent is listening" log line,
 * run from TypeScript through tsx (how it ran before the build step) and from the compiled
 * JavaScript in dist/server (how it runs now), alternating so both see the same machine load.
 *
 *   npx tsx bench/startup.ts [runs]     (builds first with `npm run build`)
 *
 * Each run gets a fresh embedded database (migrations included), as on a first start.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const root = path.resolve(import.meta.dirname, '..');
const RUNS = Number(process.argv[2] ?? 5);

const modes = {
  tsx: ['--import', 'tsx', path.join(root, 'src/main/all-in-one.ts')],
  compiled: [path.join(root, 'dist/server/src/main/all-in-one.js')],
} as const;

async function timeToListening(args: readonly string[]): Promise<number> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-startup-'));
  const startedAt = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, WEB_DIR: 'off', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`exited with ${code} before listening`)));
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('"Story Agent is listening"')) resolve(performance.now() - startedAt);
      });
    });
  } finally {
    child.kill('SIGKILL');
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const times: Record<keyof typeof modes, number[]> = { tsx: [], compiled: [] };
for (let run = 0; run < RUNS; run++) {
  for (const mode of Object.keys(modes) as (keyof typeof modes)[]) times[mode].push(await timeToListening(modes[mode]));
}
for (const mode of Object.keys(modes) as (keyof typeof modes)[]) {
  process.stdout.write(`${mode}: median ${Math.round(median(times[mode]))} ms (runs: ${times[mode].map(Math.round).join(', ')} ms)\n`);
}
