/** Lets one process at a time, among all that share the database, run a task (a sweep, say). */
export interface ProcessLock {
  /**
   * Runs the task and answers true when no other process holds the lock, and holds it until the task settles;
   * answers false at once, without running the task, while another process holds it. Never waits for the lock.
   * Throws what the task throws, or when the lock cannot be asked for (the database unreachable).
   */
  runAlone(task: () => Promise<void>): Promise<boolean>;
}
