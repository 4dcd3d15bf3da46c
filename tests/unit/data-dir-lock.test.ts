import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseInUseError, lockDataDir } from '../../src/adapters/database/data-dir-lock.js';

let folder: string;
let dataDir: string;
let holders: ChildProcess[];

beforeEach(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'story-agent-lock-'));
  dataDir = path.join(folder, 'pglite');
  holders = [];
});

afterEach(async () => {
  for (const holder of holders) {
    if (holder.exitCode === null && holder.signalCode === null) {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
  }
  fs.rmSync(folder, { recursive: true, force: true });
});

/** The id of a process that has ended. */
function endedPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

const lockModule = path.resolve(import.meta.dirname, '../../src/adapters/database/data-dir-lock.js');

/** Another process that takes the lock on `dataDir` with lockDataDir and keeps it until killed; resolves once it holds it. */
async function anotherProcessHolding(dir: string): Promise<ChildProcess> {
  const code = `import { lockDataDir } from ${JSON.stringify(lockModule)}; lockDataDir(process.argv[1]); console.log('held'); setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  holders.push(child);
  const [line] = (await once(readline.createInterface({ input: child.stdout! }), 'line')) as [string];
  expect(line).toBe('held');
  return child;
}

function lockFile(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(`${dataDir}.lock`, 'utf8')) as Record<string, unknown>;
}

function rewriteLock(changes: Record<string, unknown>): void {
  fs.writeFileSync(`${dataDir}.lock`, JSON.stringify({ ...lockFile(), ...changes }));
}

describe('lockDataDir', () => {
  it('holds <dataDir>.lock naming this process and host, refuses a second open while held and lets go on release', () => {
    const release = lockDataDir(dataDir);
    expect(lockFile()).toMatchObject({ pid: process.pid, host: os.hostname() });
    expect(() => lockDataDir(dataDir)).toThrow(DatabaseInUseError);
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by another Story Agent (process ${process.pid})`);
    release();
    release();
    expect(fs.existsSync(`${dataDir}.lock`)).toBe(false);
    lockDataDir(dataDir)();
  });

  it('refuses a lock held by another running process, saying what to do if that process is no Story Agent', async () => {
    const holder = await anotherProcessHolding(dataDir);
    const held = fs.readFileSync(`${dataDir}.lock`, 'utf8');
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by another Story Agent (process ${holder.pid})`);
    expect(() => lockDataDir(dataDir)).toThrow(`If process ${holder.pid} is no Story Agent`);
    expect(() => lockDataDir(dataDir)).toThrow(`delete ${dataDir}.lock`);
    expect(fs.readFileSync(`${dataDir}.lock`, 'utf8')).toBe(held);
  });

  it('refuses a lock written on another host whatever its pid, naming the host and the file to delete if it is gone', () => {
    fs.writeFileSync(`${dataDir}.lock`, JSON.stringify({ pid: endedPid(), host: 'storybox-2' }));
    expect(() => lockDataDir(dataDir)).toThrow(DatabaseInUseError);
    expect(() => lockDataDir(dataDir)).toThrow(`on host storybox-2 (this is ${os.hostname()})`);
    expect(() => lockDataDir(dataDir)).toThrow(`delete ${dataDir}.lock`);
    expect(lockFile()).toEqual({ pid: expect.any(Number), host: 'storybox-2' });
  });

  it.for([
    ['a process that has ended', (): string => String(endedPid())],
    ['no process id at all', (): string => ''],
    ['a process that has ended, as this version writes it', (): string => JSON.stringify({ pid: endedPid(), host: os.hostname() })],
  ] as const)('takes over a lock left with %s', ([, content]) => {
    fs.writeFileSync(`${dataDir}.lock`, content());
    const release = lockDataDir(dataDir);
    expect(lockFile()).toMatchObject({ pid: process.pid });
    release();
  });

  it('judges a bare-pid lock of the previous version by its pid: refused while that pid runs', async () => {
    const holder = await anotherProcessHolding(dataDir);
    fs.writeFileSync(`${dataDir}.lock`, String(holder.pid));
    expect(() => lockDataDir(dataDir)).toThrow(`(process ${holder.pid})`);
  });
});

// The process start time and boot id are Linux's (/proc); elsewhere a lock is judged by its pid alone.
describe.runIf(process.platform === 'linux')('lockDataDir on Linux, where a lock names the process by its start time', () => {
  it('records the boot id and the start time of the process', async () => {
    await anotherProcessHolding(dataDir);
    expect(lockFile()).toEqual({
      pid: expect.any(Number),
      host: os.hostname(),
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      startTime: expect.stringMatching(/^\d+$/),
    });
  });

  it('takes over a lock whose pid now belongs to a process started at another time (the id was reused)', async () => {
    const holder = await anotherProcessHolding(dataDir);
    rewriteLock({ startTime: String(Number(lockFile().startTime) - 1) });
    const release = lockDataDir(dataDir);
    expect(lockFile()).toMatchObject({ pid: process.pid });
    expect(holder.exitCode).toBeNull();
    release();
  });

  it('takes over a lock written before the machine last started, though its pid runs', async () => {
    await anotherProcessHolding(dataDir);
    rewriteLock({ bootId: '00000000-0000-4000-8000-000000000000' });
    lockDataDir(dataDir)();
  });

  it('takes over a bare-pid lock of the previous version written before the machine last started, though its pid runs', async () => {
    const holder = await anotherProcessHolding(dataDir);
    fs.writeFileSync(`${dataDir}.lock`, String(holder.pid));
    fs.utimesSync(`${dataDir}.lock`, new Date(0), new Date(0));
    lockDataDir(dataDir)();
  });
});
