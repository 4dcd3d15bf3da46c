import fs from 'node:fs';
import os from 'node:os';

/** The embedded database's directory is open in another process; its message is for the user as it stands. */
export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

/**
 * Who holds a lock, as `<dataDir>.lock` stores it (one JSON object). `bootId` and `startTime` are
 * there only where the writer runs on Linux: the kernel's boot id
 * (/proc/sys/kernel/random/boot_id) and field 22 of /proc/<pid>/stat (the process's start, in
 * clock ticks since boot, as a decimal string). Together with `pid` they name one process, even
 * after the pid is given to another one (a reboot, a container started again as pid 1).
 */
interface LockHolder {
  pid: number;
  /** os.hostname() of the writer; absent in a lock file of the version that wrote the bare pid. */
  host?: string;
  bootId?: string;
  startTime?: string;
}

/** Directories this process holds, so a second open in the same process is refused too. */
const heldHere = new Set<string>();

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The kernel's boot id; null off Linux. */
function bootId(): string | null {
  return readOrNull('/proc/sys/kernel/random/boot_id')?.trim() || null;
}

/** When the machine last started, in ms since the epoch (the `btime` line of /proc/stat); null off Linux. */
function bootedAtMs(): number | null {
  const line = readOrNull('/proc/stat')?.match(/^btime (\d+)$/m);
  return line ? Number(line[1]) * 1000 : null;
}

/** Field 22 (`starttime`) of /proc/<pid>/stat; null when there is no such file (off Linux, the process is gone or hidden from us). */
function startTimeOf(pid: number): string | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // Field 2, the command name in parentheses, may itself hold spaces and ')': fields 3 on follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[22 - 3] ?? null;
}

/** This process, as its lock file names it. */
function thisProcess(): LockHolder {
  const boot = bootId();
  const startTime = startTimeOf(process.pid);
  return { pid: process.pid, host: os.hostname(), ...(boot && startTime ? { bootId: boot, startTime } : {}) };
}

/** Whether some process has the id `pid` on this machine (it may be another program that got the id later). */
function pidInUse(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The holder a lock file names: the JSON object this version writes, or the bare pid the version
 * before it wrote; null for an empty or unreadable file (a writer that died before writing).
 */
function holderIn(file: string): LockHolder | null {
  const text = readOrNull(file)?.trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return { pid: Number(text) };
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isSafeInteger(holder.pid) || (holder.pid as number) <= 0) return null;
    return {
      pid: holder.pid as number,
      ...(typeof holder.host === 'string' ? { host: holder.host } : {}),
      ...(typeof holder.bootId === 'string' && typeof holder.startTime === 'string' ? { bootId: holder.bootId, startTime: holder.startTime } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * Whether the process a lock (written on this machine) names still runs. Where the lock and this
 * machine have a boot id, a lock of an earlier boot is gone, and the pid must still belong to a
 * process started at the lock's start time; a pid in use by a process started later was reused.
 * Otherwise (not Linux, /proc/<pid> hidden by hidepid, a bare-pid lock file) only whether the pid
 * is in use can be told, except that a bare-pid file last written before this boot is gone.
 */
function stillRuns(holder: LockHolder, file: string): boolean {
  const boot = bootId();
  if (holder.bootId !== undefined && boot !== null) {
    if (holder.bootId !== boot) return false;
    const startTime = startTimeOf(holder.pid);
    if (startTime !== null) return startTime === holder.startTime;
  }
  if (holder.host === undefined) {
    const bootedAt = bootedAtMs();
    const writtenAt = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
    if (bootedAt !== null && writtenAt !== undefined && writtenAt < bootedAt) return false;
  }
  return pidInUse(holder.pid);
}

/**
 * Takes the embedded (PGlite) database directory `dataDir` for this process: PGlite is one process's
 * database, and a second process on the same files would corrupt them. The lock is the file
 * `<dataDir>.lock` naming this process (see LockHolder). One left by a process that is gone (a crash,
 * kill -9, a reboot, a container started again), or whose pid now belongs to another process, is
 * taken over; a bare-pid lock of the previous version is judged by its pid. A lock written on
 * another host (DATA_DIR on shared storage) is refused whatever its pid, since a pid of another
 * machine says nothing here. Returns the function that lets it go (idempotent). Throws
 * DatabaseInUseError when a running process (or this one, for a second open) holds it, or another
 * host does.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  const me = thisProcess();
  for (;;) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = holderIn(file);
    if (holder?.host !== undefined && holder.host !== me.host) {
      throw new DatabaseInUseError(
        `The embedded database in ${dataDir} is in use by process ${holder.pid} on host ${holder.host} (this is ${me.host}), says ${file}. ` +
          `PGlite is one process's database and whether a process on another host still runs cannot be told from here: stop that server first; ` +
          `if it is gone (that machine or container crashed or was replaced), delete ${file}. Or give this one a DATA_DIR of its own, ` +
          'or set DATABASE_URL to a PostgreSQL server to run several.',
      );
    }
    if (holder !== null && (holder.pid !== process.pid || heldHere.has(dataDir)) && stillRuns(holder, file)) {
      throw new DatabaseInUseError(
        `The embedded database in ${dataDir} is in use by another Story Agent (process ${holder.pid}). PGlite is one process's database: ` +
          'stop that server first, give this one a DATA_DIR of its own, or set DATABASE_URL to a PostgreSQL server to run several. ' +
          `If process ${holder.pid} is no Story Agent (the one that held it is gone and its id was given to another program), delete ${file}.`,
      );
    }
    // Left by a process that is gone: take it over.
    fs.rmSync(file, { force: true });
  }
  heldHere.add(dataDir);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    heldHere.delete(dataDir);
    const holder = holderIn(file);
    if (holder?.pid === me.pid && holder.host === me.host && holder.startTime === me.startTime) fs.rmSync(file, { force: true });
  };
}
