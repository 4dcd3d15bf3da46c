/**
 * Model downloads as every process of an installation sees them: which process runs a
 * component's download (a claim that lapses unless renewed, so a crashed downloader blocks
 * no one for long), and the download's latest record, stored and broadcast. Records are
 * JSON-serialisable values the caller defines; components are named by string.
 */
export interface SharedDownloads<T> {
  /** True when this process now holds the component's download (no one held it, or their claim lapsed); the claim lasts `ttlMs`. */
  claim(component: string, ttlMs: number): Promise<boolean>;
  /** Stores `record` as the component's latest for `keepMs`, renews this process's claim for `claimMs`, and hands it to every subscriber. */
  publish(component: string, record: T, times: { keepMs: number; claimMs: number }): Promise<void>;
  /** Gives up this process's claim; the latest record stays until it expires. */
  release(component: string): Promise<void>;
  /** The latest record from any process; null when none was published or it expired. */
  latest(component: string): Promise<T | null>;
  /** Calls `listener` with every record published from now on, by any process; resolves once listening, with the function that stops it. */
  subscribe(component: string, listener: (record: T) => void): Promise<() => void>;
}
