import type { Readable } from 'node:stream';

/**
 * A place backups are kept: a local folder or S3-compatible object storage. Keys are
 * `/`-separated paths relative to the target's root. Writes stream; nothing holds a whole
 * artifact in memory.
 */
export interface BackupTarget {
  /** The configured name, e.g. `local` or `offsite`. */
  readonly name: string;
  /** Where it points, for messages (no credentials). */
  readonly location: string;

  /** Stores `body` under `key`; the key appears only once the whole body is stored. Returns the bytes stored. */
  put(key: string, body: Readable): Promise<number>;

  /** Reads `key`; rejects with an error naming the key when it does not exist. */
  get(key: string): Promise<Readable>;

  /** Every key under `prefix` (recursively), sorted. */
  list(prefix: string): Promise<string[]>;

  exists(key: string): Promise<boolean>;

  /** Deletes keys; a missing key is not an error. */
  delete(keys: readonly string[]): Promise<void>;
}
