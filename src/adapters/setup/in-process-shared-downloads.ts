import type { SharedDownloads } from '../../ports/shared-downloads.js';

/** Shared downloads within one process (the all-in-one layout without Redis): claims and records in memory; nothing expires, since no other process can crash holding them. */
export class InProcessSharedDownloads<T> implements SharedDownloads<T> {
  private readonly claimed = new Set<string>();
  private readonly records = new Map<string, T>();
  private readonly listeners = new Map<string, Set<(record: T) => void>>();

  async claim(component: string): Promise<boolean> {
    if (this.claimed.has(component)) return false;
    this.claimed.add(component);
    return true;
  }

  async publish(component: string, record: T): Promise<void> {
    this.records.set(component, record);
    for (const listener of this.listeners.get(component) ?? []) listener(record);
  }

  async release(component: string): Promise<void> {
    this.claimed.delete(component);
  }

  async latest(component: string): Promise<T | null> {
    return this.records.get(component) ?? null;
  }

  async subscribe(component: string, listener: (record: T) => void): Promise<() => void> {
    const set = this.listeners.get(component) ?? new Set();
    set.add(listener);
    this.listeners.set(component, set);
    return () => set.delete(listener);
  }
}
