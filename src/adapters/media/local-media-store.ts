import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { MediaStore } from '../../ports/media-store.js';

/** Every key this store hands out looks like this, and nothing else under MEDIA_DIR is ever served. */
export const MEDIA_KEY_PATTERN = /^images\/[0-9a-f-]{36}\.png$/;

/** Files under MEDIA_DIR, named by the server only: a key never comes from a user. */
export class LocalMediaStore implements MediaStore {
  constructor(
    private readonly root: string,
    private readonly urlPrefix: string,
  ) {}

  async save(bytes: Buffer, extension: 'png'): Promise<string> {
    const key = `images/${randomUUID()}.${extension}`;
    const file = this.resolve(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Write then rename, so a reader never sees half a file.
    const partial = `${file}.partial`;
    await fs.writeFile(partial, bytes);
    await fs.rename(partial, file);
    return key;
  }

  read(key: string): Promise<Buffer> {
    return fs.readFile(this.resolve(key));
  }

  async remove(key: string): Promise<number> {
    const file = this.resolve(key);
    const size = await fs.stat(file).then(
      (stats) => stats.size,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return 0;
        throw error;
      },
    );
    await fs.rm(file, { force: true });
    return size;
  }

  urlFor(key: string): string {
    return `${this.urlPrefix}/${key}`;
  }

  private resolve(key: string): string {
    if (!MEDIA_KEY_PATTERN.test(key)) throw new Error(`Not a media key: ${key}`);
    return path.join(this.root, key);
  }
}
