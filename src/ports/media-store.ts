/** One file a MediaStore holds, as `list` answers it. */
export interface StoredFile {
  /** The key `remove` takes: a finished file's key, or that of a write's temporary file (never a key a record holds). */
  key: string;
  /** The file's size in bytes. */
  bytes: number;
  /** When the file was last written. */
  modifiedAt: Date;
}

/** Where generated files live; the HTTP layer serves them under /media. */
export interface MediaStore {
  /** Stores the bytes under a generated name and returns its key (a relative path). */
  save(bytes: Buffer, extension: 'png'): Promise<string>;
  read(key: string): Promise<Buffer>;
  /** Removes the file and returns how many bytes it held; a key whose file is already gone is no error (0 bytes). */
  remove(key: string): Promise<number>;
  /**
   * Every file of the store, one at a time in no particular order (never all in memory): the finished ones and the
   * temporary files of writes under way or cut short. Nothing else in the store's directory (another program's
   * files, folders, links) is listed. Throws when the directory cannot be read; a store not written to yet lists nothing.
   */
  list(): AsyncIterable<StoredFile>;
  /** The URL a client fetches the file from. */
  urlFor(key: string): string;
}
