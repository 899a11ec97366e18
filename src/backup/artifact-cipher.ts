/**
 * Streaming AES-256-GCM for backup artifacts. GCM authenticates a whole message, so a
 * multi-gigabyte dump is cut into chunks that are each sealed on their own (the STREAM
 * construction):
 *
 * ```
 * header (29 bytes): "SKAE" | version 1 (u8) | chunk size (u32 BE) | key id (8 bytes) | base nonce (12 bytes)
 * chunk i:           ciphertext of min(chunk size, rest) bytes | 16-byte GCM tag
 * nonce of chunk i:  base nonce XOR i (u64 BE, in its last 8 bytes)
 * associated data:   header | i (u64 BE) | 1 for the last chunk, else 0
 * ```
 *
 * The header in every chunk's associated data makes it tamper-evident; the chunk index stops
 * reordering; the final flag makes a file cut at a chunk boundary fail (its new last chunk
 * was sealed as not final). Every chunk but the last holds exactly `chunk size` bytes, so a
 * reader knows a chunk is the last one when nothing follows it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { ArtifactError } from './artifact-error.js';
import type { BackupKey } from './backup-key.js';

const MAGIC = Buffer.from('SKAE', 'latin1');
const VERSION = 1;
const HEADER_LENGTH = 4 + 1 + 4 + 8 + 12;
const TAG_LENGTH = 16;
/** Plaintext bytes per chunk: small enough to stream, large enough that tags cost 0.02 %. */
export const CIPHER_CHUNK_SIZE = 64 * 1024;
// A header is read before it is authenticated: cap what it can make us buffer.
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

function chunkNonce(base: Buffer, index: bigint): Buffer {
  const nonce = Buffer.from(base);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(index);
  for (let i = 0; i < 8; i += 1) nonce[4 + i]! ^= counter[i]!;
  return nonce;
}

function associatedData(header: Buffer, index: bigint, final: boolean): Buffer {
  const tail = Buffer.alloc(9);
  tail.writeBigUInt64BE(index);
  tail[8] = final ? 1 : 0;
  return Buffer.concat([header, tail]);
}

/** Collects incoming buffers and hands out fixed-size pieces without copying more than needed. */
class ByteQueue {
  #parts: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.#parts.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns the first `n` bytes (n ≤ length). */
  take(n: number): Buffer {
    const head = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
    const piece = head.subarray(0, n);
    const rest = head.subarray(n);
    this.#parts = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return piece;
  }
}

/**
 * Encrypts a stream into the chunked format above.
 *
 * @example
 * await pipeline(dump, new ArtifactCipher(key), file);
 */
export class ArtifactCipher extends Transform {
  readonly #key: Buffer;
  readonly #header: Buffer;
  readonly #nonce: Buffer;
  readonly #queue = new ByteQueue();
  #index = 0n;

  constructor(key: BackupKey) {
    super();
    this.#key = key.key;
    this.#nonce = randomBytes(12);
    const header = Buffer.alloc(HEADER_LENGTH);
    MAGIC.copy(header, 0);
    header[4] = VERSION;
    header.writeUInt32BE(CIPHER_CHUNK_SIZE, 5);
    Buffer.from(key.id, 'hex').copy(header, 9);
    this.#nonce.copy(header, 17);
    this.#header = header;
    this.push(header);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#queue.push(chunk);
    // Strictly more than one chunk: the last chunk must be sealed as final in _flush.
    while (this.#queue.length > CIPHER_CHUNK_SIZE) this.#seal(this.#queue.take(CIPHER_CHUNK_SIZE), false);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#seal(this.#queue.take(this.#queue.length), true);
    callback();
  }

  #seal(plain: Buffer, final: boolean): void {
    const cipher = createCipheriv('aes-256-gcm', this.#key, chunkNonce(this.#nonce, this.#index), { authTagLength: TAG_LENGTH });
    cipher.setAAD(associatedData(this.#header, this.#index, final));
    const body = cipher.update(plain);
    cipher.final();
    this.push(Buffer.concat([body, cipher.getAuthTag()]));
    this.#index += 1n;
  }
}

/**
 * Decrypts the chunked format, failing with an {@link ArtifactError} on a foreign file
 * (`format`), another key (`key`), or any chunk that does not authenticate
 * (`authentication`: a flipped byte, a truncation, a reordering).
 */
export class ArtifactDecipher extends Transform {
  readonly #key: BackupKey;
  readonly #queue = new ByteQueue();
  #header: Buffer | undefined;
  #nonce: Buffer | undefined;
  #chunkSize = 0;
  #index = 0n;

  constructor(key: BackupKey) {
    super();
    this.#key = key;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#queue.push(chunk);
    try {
      if (this.#header === undefined) {
        if (this.#queue.length < HEADER_LENGTH) return callback();
        this.#readHeader(this.#queue.take(HEADER_LENGTH));
      }
      // Keep one sealed chunk back until more data (or the end) shows whether it is the last.
      const sealed = this.#chunkSize + TAG_LENGTH;
      while (this.#queue.length > sealed) this.#open(this.#queue.take(sealed), false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#header === undefined) {
        throw new ArtifactError('format', `the file ends after ${this.#queue.length} bytes, inside the encryption header: it was truncated`);
      }
      if (this.#queue.length < TAG_LENGTH) {
        throw new ArtifactError('authentication', `authentication failed: the file ends inside chunk ${this.#index}; it was truncated`);
      }
      this.#open(this.#queue.take(this.#queue.length), true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  #readHeader(header: Buffer): void {
    if (!header.subarray(0, 4).equals(MAGIC)) {
      throw new ArtifactError('format', 'not an encrypted Seckill artifact (the header magic is wrong): the file is corrupt or is not ours');
    }
    if (header[4] !== VERSION) {
      throw new ArtifactError('format', `encryption format version ${header[4]} is not known to this Seckill (it reads version ${VERSION}); restore with a newer seckill`);
    }
    const chunkSize = header.readUInt32BE(5);
    if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
      throw new ArtifactError('format', `the encryption header names a chunk size of ${chunkSize} bytes: the header is corrupt`);
    }
    const keyId = header.subarray(9, 17).toString('hex');
    if (keyId !== this.#key.id) {
      throw new ArtifactError(
        'key',
        `wrong key (key id ${this.#key.id}, the artifact was encrypted with key id ${keyId}); set backupKey or backupKeyFile to that key`,
      );
    }
    this.#header = header;
    this.#chunkSize = chunkSize;
    this.#nonce = Buffer.from(header.subarray(17, 29));
  }

  #open(sealed: Buffer, final: boolean): void {
    const body = sealed.subarray(0, sealed.length - TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.#key.key, chunkNonce(this.#nonce!, this.#index), { authTagLength: TAG_LENGTH });
    decipher.setAAD(associatedData(this.#header!, this.#index, final));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const plain = decipher.update(body);
    try {
      decipher.final();
    } catch {
      throw new ArtifactError(
        'authentication',
        `authentication failed at chunk ${this.#index} (stored bytes ${HEADER_LENGTH + Number(this.#index) * (this.#chunkSize + TAG_LENGTH)}…): ` +
          'corrupt or wrong key — the file was changed, truncated, or encrypted with another key of the same id',
      );
    }
    this.push(plain);
    this.#index += 1n;
  }
}
