import fs from 'node:fs';

/** The embedded database's directory is open in another process; its message is for the user as it stands. */
export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

/** Directories this process holds, so a second open in the same process is refused too. */
const heldHere = new Set<string>();

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function pidIn(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the embedded (PGlite) database directory `dataDir` for this process: PGlite is one process's
 * database, and a second process on the same files would corrupt them. The lock is the file
 * `<dataDir>.lock` holding this process's id; one left by a process that is gone (a crash, kill -9) is
 * taken over. Returns the function that lets it go (idempotent). Throws DatabaseInUseError when a
 * running process (or this one, for a second open) holds it.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = pidIn(file);
    if (holder !== null && (holder !== process.pid || heldHere.has(dataDir)) && isRunning(holder)) {
      throw new DatabaseInUseError(
        `The embedded database in ${dataDir} is in use by another Story Agent (process ${holder}). PGlite is one process's database: ` +
          'stop that server first, give this one a DATA_DIR of its own, or set DATABASE_URL to a PostgreSQL server to run several.',
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
    if (pidIn(file) === process.pid) fs.rmSync(file, { force: true });
  };
}
