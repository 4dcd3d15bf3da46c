/** Where generated files live; the HTTP layer serves them under /media. */
export interface MediaStore {
  /** Stores the bytes under a generated name and returns its key (a relative path). */
  save(bytes: Buffer, extension: 'png'): Promise<string>;
  read(key: string): Promise<Buffer>;
  /** Removes the file and returns how many bytes it held; a key whose file is already gone is no error (0 bytes). */
  remove(key: string): Promise<number>;
  /** The URL a client fetches the file from. */
  urlFor(key: string): string;
}
