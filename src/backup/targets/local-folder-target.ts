import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupTarget } from '../backup-target.js';
import { checkedKey, checkedPrefix } from './target-key.js';

/** Suffix of a file still being written; never listed, renamed away once complete. */
const PARTIAL = '.partial';

class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * A backup target in a local folder (a second disk, an NFS mount). A file is written as
 * `<key>.partial`, flushed to disk, then renamed, and its folder flushed: after a crash a
 * key is either whole or absent.
 *
 * @example
 * const target = new LocalFolderTarget('local', '/var/backups/seckill');
 */
export class LocalFolderTarget implements BackupTarget {
  readonly name: string;
  readonly location: string;
  readonly #root: string;

  constructor(name: string, root: string) {
    this.name = name;
    this.#root = root;
    this.location = root;
  }

  #path(key: string): string {
    return join(this.#root, ...checkedKey(key).split('/'));
  }

  async put(key: string, body: Readable): Promise<number> {
    const path = this.#path(key);
    const partial = `${path}${PARTIAL}`;
    const counter = new ByteCounter();
    try {
      await mkdir(dirname(path), { recursive: true });
      // The stream owns the file handle; `flush` fsyncs it before 'finish'.
      await pipeline(body, counter, createWriteStream(partial, { mode: 0o600, flush: true }));
      await rename(partial, path);
      await fsyncPath(dirname(path));
      return counter.bytes;
    } catch (error) {
      await unlink(partial).catch(() => undefined);
      throw new Error(`writing ${key} to target ${this.name} (${this.location}) failed: ${(error as Error).message}`);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.#path(key);
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a file');
    } catch (error) {
      throw new Error(`${key} does not exist on target ${this.name} (${this.location}): ${isMissing(error) ? 'no such file' : (error as Error).message}`);
    }
    return createReadStream(path);
  }

  async list(prefix: string): Promise<string[]> {
    checkedPrefix(prefix);
    // Only the folder the prefix points into needs walking.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const keys: string[] = [];
    const walk = async (relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(relative === '' ? this.#root : join(this.#root, ...relative.split('/')), { withFileTypes: true });
      } catch (error) {
        if (isMissing(error)) return;
        throw new Error(`listing target ${this.name} (${this.location}) failed: ${(error as Error).message}`);
      }
      for (const entry of entries) {
        const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
        } else if (entry.isFile() && !entry.name.endsWith(PARTIAL) && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(base);
    return keys.sort();
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.#path(key))).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const folders = new Set<string>();
    for (const key of keys) {
      const path = this.#path(key);
      for (const file of [path, `${path}${PARTIAL}`]) {
        await unlink(file).catch((error: unknown) => {
          if (!isMissing(error)) throw new Error(`deleting ${key} from target ${this.name} (${this.location}) failed: ${(error as Error).message}`);
        });
      }
      folders.add(dirname(path));
    }
    // Empty folders left behind would look like backups in progress.
    const deepestFirst = [...folders].sort((a, b) => b.split(sep).length - a.split(sep).length);
    for (let folder of deepestFirst) {
      while (folder.startsWith(this.#root + sep)) {
        try {
          await rmdir(folder);
        } catch {
          break;
        }
        folder = dirname(folder);
      }
    }
  }
}
