import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import type { ProcessLock } from '../../ports/process-lock.js';

/** What this lock uses of a pooled node-postgres client. */
interface PgClient {
  query<Row>(text: string, values: unknown[]): Promise<{ rows: Row[] }>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** Any fixed number other than the migration lock's: the key of the advisory lock that lets one worker at a time sweep media. */
export const MEDIA_SWEEP_LOCK_KEY = 7_305_113_202;

/**
 * A session-level PostgreSQL advisory lock (pg_try_advisory_lock) held on a pooled connection of its own for as long as the
 * task runs; the task's queries use other connections of the pool, so the pool needs two. A process that dies while
 * holding it loses its connection, and with it the lock, so no lock outlives its holder.
 */
export class PostgresAdvisoryLock implements ProcessLock {
  constructor(
    private readonly dataSource: DataSource,
    private readonly key: number,
  ) {}

  async runAlone(task: () => Promise<void>): Promise<boolean> {
    // A pooled pg client of its own (not a TypeORM query runner), so that one whose unlock failed can be handed back as broken.
    const [client, release] = (await (this.dataSource.driver as PostgresDriver).obtainMasterConnection()) as [PgClient, (error?: Error) => void];
    let broken: Error | undefined;
    // As TypeORM's query runners do: a connection lost while checked out is handed back as broken, not thrown from an event.
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS "locked"', [this.key]);
      if (!rows[0].locked) return false;
      try {
        await task();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [this.key]).catch((error: unknown) => {
          // A connection whose unlock failed may still hold the lock: it must not go back to the pool, or no sweep would run again.
          broken = error instanceof Error ? error : new Error(String(error));
        });
      }
      return true;
    } finally {
      client.removeListener('error', onError);
      release(broken);
    }
  }
}

/** The embedded database (PGlite): one process has it open at a time (see lockDataDir), so the task just runs. */
export class SingleProcessLock implements ProcessLock {
  async runAlone(task: () => Promise<void>): Promise<boolean> {
    await task();
    return true;
  }
}
