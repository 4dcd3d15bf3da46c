import { randomUUID } from 'node:crypto';
import type { MediaStore, StoredFile } from '../../src/ports/media-store.js';

/**
 * The MediaStore in memory, keyed as the local store keys files. Each file keeps the time it was written (`clock`,
 * settable, so a test can make a file old without waiting); `remove` answers the bytes it freed (0 for a key already
 * gone) and fails, as a read-only disk does, for the keys in `failing`.
 */
export class InMemoryMediaStore implements MediaStore {
  readonly files = new Map<string, Buffer>();
  readonly modifiedAt = new Map<string, Date>();
  readonly failing = new Set<string>();
  /** Every key passed to remove, in order. */
  readonly removed: string[] = [];
  clock: () => Date = () => new Date();

  async save(bytes: Buffer): Promise<string> {
    const key = `images/${randomUUID()}.png`;
    this.put(key, bytes);
    return key;
  }

  /** Stores bytes under a key of the caller's (a write's temporary file, say), written at `clock()`. */
  put(key: string, bytes: Buffer): void {
    this.files.set(key, bytes);
    this.modifiedAt.set(key, this.clock());
  }

  async read(key: string): Promise<Buffer> {
    const bytes = this.files.get(key);
    if (!bytes) throw new Error(`no file ${key}`);
    return bytes;
  }

  async remove(key: string): Promise<number> {
    this.removed.push(key);
    if (this.failing.has(key)) throw Object.assign(new Error(`EACCES: permission denied, unlink '${key}'`), { code: 'EACCES' });
    const size = this.files.get(key)?.length ?? 0;
    this.files.delete(key);
    this.modifiedAt.delete(key);
    return size;
  }

  async *list(): AsyncIterable<StoredFile> {
    for (const [key, bytes] of [...this.files]) {
      const modifiedAt = this.modifiedAt.get(key);
      if (modifiedAt) yield { key, bytes: bytes.length, modifiedAt };
    }
  }

  urlFor(key: string): string {
    return `/media/${key}`;
  }
}
