import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';

/** The embedded database's directory is open in another process; its message is for the user as it stands. */
export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

/**
 * How long a lock its holder no longer refreshes is honoured, in ms. The holder refreshes it every
 * LOCK_UPDATE_MS from its event loop, which PGlite (WASM, in this thread) holds for as long as a
 * query or migration runs: a holder may be stuck 25 s before another process may take its
 * lock. A start after a crash waits at most this long for the lock to go stale.
 */
const LOCK_STALE_MS = 30_000;
/** The share of the stale time between two refreshes: every 5 s at the default stale time. */
const UPDATES_PER_STALE = 6;
/** proper-lockfile's shortest refresh interval, ms. */
const MIN_UPDATE_MS = 1_000;
/** How often a start waiting for a lock looks at it again, ms. */
const POLL_MS = 250;
/** When the gate (below) of a process killed while holding it is taken over, ms; holding it takes a few ms. */
const GATE_STALE_MS = 5_000;

/** Who took a lock, as `<dataDir>.lock-holder.json` says; only to name it in a refusal, never to judge the lock. */
interface LockHolder {
  pid: number;
  /** os.hostname() of the process (a container's id in Docker). */
  host: string;
  /** When the process started, ISO 8601. */
  startedAt: string;
}

export interface DataDirLockOptions {
  /**
   * Called, from a timer, when the lock was lost while held: its directory was removed, or another
   * process took it over because this one did not refresh it for the stale time (its event loop
   * blocked). Another process may have the database open now: stop writing to it at once.
   */
  onLost: (error: Error) => void;
  /**
   * How long a lock that is not refreshed is honoured, ms (2000 at least; default 30 000); every
   * process on one DATA_DIR must use the same. Tests pass less.
   */
  staleMs?: number;
}

/** Directories (resolved) this process holds or is taking, so a second open in the same process is refused at once. */
const heldHere = new Set<string>();

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** The lock directory's last refresh, ms since the epoch; undefined when there is none. */
function refreshedAt(lockPath: string): number | undefined {
  return fs.statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs;
}

/** Whether a process with this id runs now (EPERM: it does, as another user's). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/**
 * Deletes `<dataDir>.lock` where it is a file: the pid file of the releases before proper-lockfile,
 * which held it while they ran. One naming another running process is refused (a server of such a
 * release may still run on this DATA_DIR; if that pid now belongs to another program, the message
 * says to delete the file); one naming a process that has ended, or this one, is deleted. Its unlink
 * cannot remove a lock directory.
 */
function removeOldLockFile(lockPath: string, dataDir: string): void {
  if (!fs.lstatSync(lockPath, { throwIfNoEntry: false })?.isFile()) return;
  const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
    throw new DatabaseInUseError(
      `The embedded database in ${dataDir} is in use by process ${pid}, says ${lockPath}, the lock of a Story Agent release before this one: ` +
        `stop that server first. If process ${pid} is no Story Agent (its id was given to another program since), delete ${lockPath} and start again.`,
    );
  }
  try {
    fs.unlinkSync(lockPath);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

/** The holder a holder file names, in words; "another process" when it says nothing usable. */
function describeHolder(holderPath: string): string {
  try {
    const holder = JSON.parse(fs.readFileSync(holderPath, 'utf8')) as Partial<LockHolder>;
    if (typeof holder.pid === 'number' && typeof holder.host === 'string' && typeof holder.startedAt === 'string') {
      return `process ${holder.pid} on ${holder.host === os.hostname() ? 'this host' : `host ${holder.host}`} (started ${holder.startedAt})`;
    }
  } catch {
    // Not written yet, or by a process killed while writing it.
  }
  return 'another process';
}

/** Writes this process's holder file whole (a reader never sees half of it). */
function writeHolder(holderPath: string): void {
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString() };
  const partial = `${holderPath}.${process.pid}.tmp`;
  fs.writeFileSync(partial, `${JSON.stringify(holder)}\n`);
  fs.renameSync(partial, holderPath);
}

/**
 * Takes the embedded (PGlite) database directory `dataDir` for this process: PGlite is one process's
 * database, and a second process on the same files would corrupt them. The lock is the directory
 * `<dataDir>.lock`, made with mkdir (atomic, on network file systems too) by proper-lockfile, whose
 * mtime the holder refreshes every sixth of the stale time; one not refreshed for the stale time
 * (30 s) is stale and taken over, whoever left it and wherever (a crash, kill -9, a container
 * created again with another host name, another host on shared storage). Its holder's pid, host
 * and start time go to `<dataDir>.lock-holder.json`, only to name it in a refusal.
 *
 * A lock that is held makes this wait: a holder that refreshes it within the wait is running, and
 * the start is refused (within about 5 s); one that does not is gone, and its lock is taken once
 * stale (within 30 s), so a server restarted at once after a crash (Docker's or systemd's restart)
 * comes up by itself. proper-lockfile's stale takeover (stat, rmdir, mkdir) lets two processes
 * both win when they take over the same stale lock at once; here every attempt goes through a
 * second, short-held lock, `<dataDir>.lock-gate`, so they take turns.
 *
 * Resolves to the function that lets the lock go (idempotent; nothing to do once it was lost).
 * Rejects with DatabaseInUseError while another process holds the lock, or this one does.
 */
export async function lockDataDir(dataDir: string, options: DataDirLockOptions): Promise<() => Promise<void>> {
  const key = path.resolve(dataDir);
  const lockPath = `${key}.lock`;
  const holderPath = `${key}.lock-holder.json`;
  const staleMs = options.staleMs ?? LOCK_STALE_MS;
  const updateMs = Math.max(Math.round(staleMs / UPDATES_PER_STALE), MIN_UPDATE_MS);
  const inUse = (holder: string) =>
    new DatabaseInUseError(
      `The embedded database in ${dataDir} is in use by ${holder}, says ${holderPath}. PGlite is one process's database: ` +
        'stop that server first, give this one a DATA_DIR of its own, or set DATABASE_URL to a PostgreSQL server to run several. ' +
        `Its lock, ${lockPath}, goes when that server stops, and ${staleMs / 1000} s after it crashed: there is nothing to delete by hand.`,
    );
  if (heldHere.has(key)) throw inUse(`this process (${process.pid})`);
  heldHere.add(key);

  let lost = false;
  const lockOptions: lockfile.LockOptions = {
    realpath: false,
    lockfilePath: lockPath,
    stale: staleMs,
    update: updateMs,
    onCompromised(error) {
      lost = true;
      heldHere.delete(key);
      options.onLost(error);
    },
  };
  /** One try at the lock through the gate; null while either is held by another process. */
  const attempt = async (): Promise<(() => Promise<void>) | null> => {
    let releaseGate: () => Promise<void>;
    try {
      // Losing the gate (held for milliseconds) only reopens the narrow race it closes: nothing to do then.
      const gate = `${key}.lock-gate`;
      releaseGate = await lockfile.lock(gate, { realpath: false, lockfilePath: gate, stale: GATE_STALE_MS, onCompromised: () => undefined });
    } catch (error) {
      if (errorCode(error) === 'ELOCKED') return null;
      throw error;
    }
    try {
      removeOldLockFile(lockPath, dataDir);
      return await lockfile.lock(key, lockOptions);
    } catch (error) {
      if (errorCode(error) === 'ELOCKED') return null;
      throw error;
    } finally {
      await releaseGate().catch(() => undefined);
    }
  };

  let release: (() => Promise<void>) | null = null;
  try {
    // A lock not refreshed for the stale time is taken by then; still held after that, it is refused.
    const deadline = Date.now() + staleMs + 2 * updateMs;
    let firstSeen: number | undefined;
    while (!release) {
      release = await attempt();
      if (release) break;
      const seen = refreshedAt(lockPath);
      if (seen !== undefined) {
        firstSeen ??= seen;
        if (seen !== firstSeen || Date.now() > deadline) throw inUse(describeHolder(holderPath));
      }
      await sleep(POLL_MS);
    }
    writeHolder(holderPath);
  } catch (error) {
    heldHere.delete(key);
    await release?.().catch(() => undefined);
    throw error;
  }

  const releaseLock = release;
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (lost) return;
    heldHere.delete(key);
    fs.rmSync(holderPath, { force: true });
    await releaseLock().catch((error: unknown) => {
      // Lost between the check above and now: another process may hold it, and it is not ours to remove.
      if (errorCode(error) !== 'ERELEASED') throw error;
    });
  };
}
