import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

const root = path.resolve(import.meta.dirname, '../..');

export type ProcessRole = 'api' | 'worker' | 'all-in-one';

/** A server process of ours, started the way `npm run start:<role>` starts it (compiled JavaScript), with its JSON log lines readable. */
export interface ServerProcess {
  role: ProcessRole;
  child: ChildProcess;
  /** Set for api and all-in-one once listening. */
  url: string | null;
  logs: Record<string, unknown>[];
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

const NPM_SCRIPTS: Record<ProcessRole, string> = { 'all-in-one': 'start', api: 'start:api', worker: 'start:worker' };

/**
 * Starts one of our processes from compiled JavaScript; with `viaNpm`, exactly as a user does
 * (`npm start` and the like), so signals go to npm and must reach the server through it.
 */
export async function startServerProcess(role: ProcessRole, env: Record<string, string | undefined>, { viaNpm = false } = {}): Promise<ServerProcess> {
  const command = viaNpm
    ? (['npm', ['run', '--silent', NPM_SCRIPTS[role]]] as const)
    : ([process.execPath, ['--enable-source-maps', path.join(root, 'dist/server/src/main', `${role}.js`)]] as const);
  const child = spawn(command[0], [...command[1]], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      parsed = { msg: line };
    }
    logs.push(parsed);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(parsed)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(parsed);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${role}: no such log line within ${timeoutMs} ms. stderr:\n${stderr.join('\n')}`)), timeoutMs);
      waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then((code) => reject(new Error(`${role} exited with ${code} before the log line. stderr:\n${stderr.join('\n')}`)));
    });
  };

  let url: string | null = null;
  if (role === 'worker') {
    await waitForLog((line) => line.msg === 'worker is taking generations');
  } else {
    const listening = await waitForLog((line) => line.msg === 'Story Agent is listening');
    url = String(listening.url).replace(/\/graphql$/, '');
  }
  return {
    role,
    child,
    url,
    logs,
    waitForLog,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
