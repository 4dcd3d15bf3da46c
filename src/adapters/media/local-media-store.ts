import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { MediaStore, StoredFile } from '../../ports/media-store.js';

/** Every key this store hands out looks like this, and nothing else under MEDIA_DIR is ever served. */
export const MEDIA_KEY_PATTERN = /^images\/[0-9a-f-]{36}\.png$/;

/** The folder under MEDIA_DIR every key lives in. */
const IMAGES_FOLDER = 'images';

/** Appended to a key while its bytes are written (see save); such a file is renamed to the key once complete. */
const PARTIAL_SUFFIX = '.partial';

/** A key or the temporary file of a write of one: what list answers and remove takes. */
const STORED_FILE_PATTERN = /^images\/[0-9a-f-]{36}\.png(\.partial)?$/;

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
    const partial = `${file}${PARTIAL_SUFFIX}`;
    await fs.writeFile(partial, bytes);
    await fs.rename(partial, file);
    return key;
  }

  read(key: string): Promise<Buffer> {
    return fs.readFile(this.resolve(key));
  }

  async remove(key: string): Promise<number> {
    const file = this.resolve(key, STORED_FILE_PATTERN);
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

  /**
   * The regular files of MEDIA_DIR/images named as a key or a write's temporary file, read one directory entry at a
   * time. Links are never followed: a symlink (to a file or folder anywhere) is no store file and is not listed, and
   * an `images` that is itself a link lists nothing, so nothing outside MEDIA_DIR is ever offered for removal. Sizes
   * and times come from lstat; an entry gone between reading the folder and its lstat is skipped.
   */
  async *list(): AsyncIterable<StoredFile> {
    const folder = path.join(this.root, IMAGES_FOLDER);
    const kind = await fs.lstat(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (!kind?.isDirectory()) return;
    for await (const entry of await fs.opendir(folder)) {
      const key = `${IMAGES_FOLDER}/${entry.name}`;
      if (!entry.isFile() || !STORED_FILE_PATTERN.test(key)) continue;
      const stats = await fs.lstat(path.join(folder, entry.name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
      if (!stats?.isFile()) continue;
      yield { key, bytes: stats.size, modifiedAt: stats.mtime };
    }
  }

  urlFor(key: string): string {
    return `${this.urlPrefix}/${key}`;
  }

  private resolve(key: string, pattern: RegExp = MEDIA_KEY_PATTERN): string {
    if (!pattern.test(key)) throw new Error(`Not a media key: ${key}`);
    return path.join(this.root, key);
  }
}
