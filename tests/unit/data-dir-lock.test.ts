import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseInUseError, lockDataDir } from '../../src/adapters/database/data-dir-lock.js';

let folder: string;
let dataDir: string;

beforeEach(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'story-agent-lock-'));
  dataDir = path.join(folder, 'pglite');
});

afterEach(() => fs.rmSync(folder, { recursive: true, force: true }));

/** The id of a process that has ended. */
function endedPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

describe('lockDataDir', () => {
  it('holds <dataDir>.lock with this process id, refuses a second open while held and lets go on release', () => {
    const release = lockDataDir(dataDir);
    expect(fs.readFileSync(`${dataDir}.lock`, 'utf8')).toBe(String(process.pid));
    expect(() => lockDataDir(dataDir)).toThrow(DatabaseInUseError);
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by another Story Agent (process ${process.pid})`);
    release();
    release();
    expect(fs.existsSync(`${dataDir}.lock`)).toBe(false);
    lockDataDir(dataDir)();
  });

  it('refuses a lock held by another running process', () => {
    fs.writeFileSync(`${dataDir}.lock`, String(process.ppid));
    expect(() => lockDataDir(dataDir)).toThrow(`(process ${process.ppid})`);
    expect(fs.readFileSync(`${dataDir}.lock`, 'utf8')).toBe(String(process.ppid));
  });

  it.for([
    ['a process that has ended', (): string => String(endedPid())],
    ['no process id at all', (): string => ''],
  ] as const)('takes over a lock left with %s', ([, content]) => {
    fs.writeFileSync(`${dataDir}.lock`, content());
    const release = lockDataDir(dataDir);
    expect(fs.readFileSync(`${dataDir}.lock`, 'utf8')).toBe(String(process.pid));
    release();
  });
});
