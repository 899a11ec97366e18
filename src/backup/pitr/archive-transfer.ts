import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { BackupTarget } from '../backup-target.js';

/**
 * Moving log files and small JSON records between the local spool and a backup target.
 * Log files are gzip-compressed on the way (level 1: binlogs shrink several times, and a
 * WAL segment that is still being filled is mostly zeros) and their SHA-256 is taken of
 * the raw bytes, so a restore can prove it got back what was archived.
 */

/** What one transfer moved. */
export interface TransferredFile {
  /** Bytes before compression. */
  readonly rawBytes: number;
  /** SHA-256 (hex) of the bytes before compression. */
  readonly sha256: string;
  /** Bytes as stored on the target. */
  readonly storedBytes: number;
}

/** Counts and hashes what passes through, and fails the stream when fewer than `expected` bytes came. */
class Measure extends Transform {
  readonly #hash = createHash('sha256');
  readonly #expected: number | undefined;
  bytes = 0;

  constructor(expected?: number) {
    super();
    this.#expected = expected;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#expected !== undefined && this.bytes !== this.#expected) {
      // The file was rewritten under us (an archiver restarted): storing this would store a torn log.
      callback(new Error(`read ${this.bytes} bytes where ${this.#expected} were expected; the file changed while it was copied`));
      return;
    }
    callback();
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/**
 * Streams `source` through `through` (checks that may fail the upload) and gzip to `key`.
 * Nothing is stored under `key` when any of them fails.
 */
export async function uploadStream(target: BackupTarget, key: string, source: Readable, ...through: Transform[]): Promise<TransferredFile> {
  const measure = new Measure();
  const gzip = createGzip({ level: 1 });
  const stored = target.put(key, gzip);
  // A failing source or check destroys gzip, which fails the put as well.
  const feeding = pipeline([source, ...through, measure, gzip]);
  const [storedBytes] = await Promise.all([stored, feeding]);
  return { rawBytes: measure.bytes, sha256: measure.digest(), storedBytes };
}

/**
 * Uploads the first `length` bytes of a local file (all of it when omitted), gzipped,
 * under `key`. Fails, storing nothing, when the file holds fewer bytes by then.
 */
export function uploadLogFile(target: BackupTarget, key: string, path: string, length?: number): Promise<TransferredFile> {
  const source = length === 0 ? Readable.from([]) : createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 });
  return uploadStream(target, key, source, new Measure(length));
}

/** Downloads a gzipped log file from `key` into a local file. */
export async function downloadLogFile(target: BackupTarget, key: string, path: string): Promise<TransferredFile> {
  const stored = new Measure();
  const raw = new Measure();
  await pipeline(await target.get(key), stored, createGunzip(), raw, createWriteStream(path, { mode: 0o644 }));
  return { rawBytes: raw.bytes, sha256: raw.digest(), storedBytes: stored.bytes };
}

/** Stores a small JSON record. */
export async function putJson(target: BackupTarget, key: string, value: unknown): Promise<void> {
  await target.put(key, Readable.from([Buffer.from(`${JSON.stringify(value, null, 2)}\n`)]));
}

/** Reads a JSON record, or undefined when the key does not exist. */
export async function getJson<T>(target: BackupTarget, key: string): Promise<T | undefined> {
  if (!(await target.exists(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of await target.get(key)) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch (error) {
    throw new Error(`${key} on backup target ${target.name} is not valid JSON (${String(error)}); it was damaged or written by something else`);
  }
}
