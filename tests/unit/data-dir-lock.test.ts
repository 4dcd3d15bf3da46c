import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseInUseError, lockDataDir } from '../../src/adapters/database/data-dir-lock.js';

/** proper-lockfile's shortest stale time, so a lock left by a killed process is taken over in seconds. */
const STALE_MS = 2_000;
/** Long enough for a lock left behind to go stale and be taken over. */
const TAKEOVER_TEST_MS = 30_000;

let folder: string;
let dataDir: string;
let lockPath: string;
let holderPath: string;
let children: ChildProcess[];
let releases: (() => Promise<void>)[];

beforeEach(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'story-agent-lock-'));
  dataDir = path.join(folder, 'pglite');
  lockPath = `${dataDir}.lock`;
  holderPath = `${dataDir}.lock-holder.json`;
  children = [];
  releases = [];
});

afterEach(async () => {
  for (const release of releases) await release();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Takes the lock in this process, with the short stale time; a lost lock fails the test. */
async function lockHere(): Promise<() => Promise<void>> {
  const release = await lockDataDir(dataDir, {
    staleMs: STALE_MS,
    onLost: (error) => {
      throw new Error(`the test's lock was lost: ${error.message}`);
    },
  });
  releases.push(release);
  return release;
}

const lockModule = path.resolve(import.meta.dirname, '../../src/adapters/database/data-dir-lock.js');

/** What a locking process reports, as its one line: that it holds the lock (and keeps it until killed), or why not. */
type Outcome = { held: true } | { held: false; name: string; message: string };

/** Another process that asks for the lock on `dataDir` with lockDataDir, with the short stale time. */
function startLocker(): { child: ChildProcess; outcome: Promise<Outcome> } {
  const code = `
    import { lockDataDir } from ${JSON.stringify(lockModule)};
    try {
      await lockDataDir(process.argv[1], { staleMs: Number(process.argv[2]), onLost: () => process.exit(3) });
      console.log(JSON.stringify({ held: true }));
      setInterval(() => {}, 60_000);
    } catch (error) {
      console.log(JSON.stringify({ held: false, name: error.name, message: error.message }));
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, dataDir, String(STALE_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const outcome = once(readline.createInterface({ input: child.stdout! }), 'line').then(([line]) => JSON.parse(line as string) as Outcome);
  return { child, outcome };
}

/** Another process holding the lock until killed; resolves once it holds it. */
async function anotherProcessHolding(): Promise<ChildProcess> {
  const { child, outcome } = startLocker();
  expect(await outcome).toEqual({ held: true });
  return child;
}

/** A lock left behind by a holder killed with SIGKILL, which runs no exit handler. */
async function lockLeftByKilledProcess(): Promise<void> {
  const holder = await anotherProcessHolding();
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  expect(fs.statSync(lockPath).isDirectory()).toBe(true);
}

describe('lockDataDir', () => {
  it('holds <dataDir>.lock, names this process beside it, refuses a second open in this process and lets go on release', async () => {
    const release = await lockHere();
    expect(fs.statSync(lockPath).isDirectory()).toBe(true);
    expect(JSON.parse(fs.readFileSync(holderPath, 'utf8'))).toEqual({ pid: process.pid, host: os.hostname(), startedAt: expect.any(String) });

    const second = lockHere();
    await expect(second).rejects.toThrow(DatabaseInUseError);
    await expect(second).rejects.toThrow(`is in use by this process (${process.pid})`);

    await release();
    await release();
    expect(fs.existsSync(lockPath)).toBe(false);
    expect(fs.existsSync(holderPath)).toBe(false);
    await lockHere();
    expect(fs.statSync(lockPath).isDirectory()).toBe(true);
  });

  it('refuses a lock held by another running process, naming it and saying that there is nothing to delete', async () => {
    const holder = await anotherProcessHolding();
    const refused = lockHere();
    await expect(refused).rejects.toThrow(DatabaseInUseError);
    await expect(refused).rejects.toThrow(`is in use by process ${holder.pid} on this host (started `);
    await expect(refused).rejects.toThrow('there is nothing to delete by hand');
    expect(holder.exitCode).toBeNull();
    expect(JSON.parse(fs.readFileSync(holderPath, 'utf8'))).toMatchObject({ pid: holder.pid });
  });

  it('takes over the lock of a holder killed with SIGKILL once it has gone stale', { timeout: TAKEOVER_TEST_MS }, async () => {
    await lockLeftByKilledProcess();
    await lockHere();
    expect(JSON.parse(fs.readFileSync(holderPath, 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('takes over a stale lock whose holder file names another host, as a container created again after a crash finds it', async () => {
    fs.mkdirSync(lockPath);
    fs.writeFileSync(holderPath, JSON.stringify({ pid: 1, host: '3f2a9c0d1e7b', startedAt: '2026-11-30T08:00:00.000Z' }));
    const lastRefresh = new Date(Date.now() - 10 * STALE_MS);
    fs.utimesSync(lockPath, lastRefresh, lastRefresh);
    await lockHere();
    expect(JSON.parse(fs.readFileSync(holderPath, 'utf8'))).toMatchObject({ pid: process.pid, host: os.hostname() });
  });

  it('names the host of a holder on another host (DATA_DIR on shared storage)', async () => {
    const holder = await anotherProcessHolding();
    fs.writeFileSync(holderPath, JSON.stringify({ pid: holder.pid, host: 'storybox-2', startedAt: '2026-11-30T08:00:00.000Z' }));
    await expect(lockHere()).rejects.toThrow(`is in use by process ${holder.pid} on host storybox-2 (started 2026-11-30T08:00:00.000Z)`);
  });

  it.for([
    ['a free lock', async (): Promise<void> => undefined],
    ['a lock left by a killed holder', lockLeftByKilledProcess],
  ] as const)(
    'lets exactly one of several processes asking at once for %s take it; the others are refused, naming it',
    { timeout: TAKEOVER_TEST_MS },
    async ([, before]) => {
      await before();
      const lockers = Array.from({ length: 4 }, startLocker);
      const outcomes = await Promise.all(lockers.map((locker) => locker.outcome));
      const winners = lockers.filter((_, index) => outcomes[index].held);
      expect(winners).toHaveLength(1);
      for (const outcome of outcomes.filter((each) => !each.held)) {
        expect(outcome).toEqual({ held: false, name: 'DatabaseInUseError', message: expect.stringContaining(`is in use by process ${winners[0].child.pid} `) });
      }
    },
  );

  it.for([
    ['naming a process that has ended', (): string => String(spawnSync(process.execPath, ['-e', '']).pid)],
    ['naming this running process', (): string => String(process.pid)],
  ] as const)('replaces the pid file an earlier release left at <dataDir>.lock, %s, with its lock directory', async ([, content]) => {
    fs.writeFileSync(lockPath, content());
    const release = await lockHere();
    expect(fs.statSync(lockPath).isDirectory()).toBe(true);
    await release();
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it('refuses the pid file an earlier release left at <dataDir>.lock while the process it names runs, saying what to do', async ({ onTestFinished }) => {
    const earlier = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    onTestFinished(() => void earlier.kill('SIGKILL'));
    await once(earlier, 'spawn');
    fs.writeFileSync(lockPath, String(earlier.pid));
    await expect(lockHere()).rejects.toThrow(
      `is in use by process ${earlier.pid}, says ${lockPath}, the lock of a Story Agent release before this one: stop that server first. If process ${earlier.pid} is no Story Agent`,
    );
    expect(fs.readFileSync(lockPath, 'utf8')).toBe(String(earlier.pid));
  });

  it('tells onLost when its lock is taken away while held, and its release then leaves the lock to whoever holds it', async () => {
    let lost: (error: Error) => void = () => undefined;
    const lostError = new Promise<Error>((resolve) => {
      lost = resolve;
    });
    const release = await lockDataDir(dataDir, { staleMs: STALE_MS, onLost: (error) => lost(error) });
    fs.rmdirSync(lockPath);
    expect(await lostError).toMatchObject({ code: 'ECOMPROMISED' });

    const holder = await anotherProcessHolding();
    await release();
    expect(fs.statSync(lockPath).isDirectory()).toBe(true);
    expect(JSON.parse(fs.readFileSync(holderPath, 'utf8'))).toMatchObject({ pid: holder.pid });
  });
});
