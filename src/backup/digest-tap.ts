import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { ArtifactError } from './artifact-error.js';

/** What a {@link DigestTap} must have seen by the end, or it fails the stream. */
export interface ExpectedDigest {
  readonly size: number;
  readonly sha256: string;
  /** `stored` (compressed and encrypted bytes) or `raw`: picks the checks and the wording. */
  readonly bytes: 'stored' | 'raw';
}

/**
 * Passes bytes through unchanged while counting them and computing their SHA-256, so a
 * checksum costs no second read. With `expect`, a mismatch fails the stream before it ends:
 * a consumer (a restore) sees an error instead of a clean end of a wrong artifact.
 */
export class DigestTap extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #expect: ExpectedDigest | undefined;
  readonly #onBytes: ((bytes: number) => void) | undefined;
  #bytes = 0;
  #sha256: string | undefined;

  /**
   * @param expect - what must have passed by the end, or the stream fails.
   * @param onBytes - told the running byte count after each chunk (for progress; a
   *   'data' listener instead would start the flow before the real reader is attached).
   */
  constructor(expect?: ExpectedDigest, onBytes?: (bytes: number) => void) {
    super();
    this.#expect = expect;
    this.#onBytes = onBytes;
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Hex SHA-256 of everything seen; only once the stream has ended. */
  get sha256(): string {
    if (this.#sha256 === undefined) throw new Error('DigestTap.sha256 read before the stream ended');
    return this.#sha256;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    this.#onBytes?.(this.#bytes);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#sha256 = this.#hash.digest('hex');
    callback(this.#mismatch());
  }

  #mismatch(): ArtifactError | null {
    const expect = this.#expect;
    if (expect === undefined) return null;
    const stored = expect.bytes === 'stored';
    if (this.#bytes !== expect.size) {
      return new ArtifactError(
        stored ? 'size' : 'raw-size',
        stored
          ? `the stored file is ${this.#bytes} bytes, the manifest says ${expect.size}: it was truncated or changed`
          : `it decodes to ${this.#bytes} bytes, the manifest says ${expect.size}`,
      );
    }
    if (this.#sha256 !== expect.sha256) {
      return new ArtifactError(
        stored ? 'sha256' : 'raw-sha256',
        stored
          ? `sha256 of the stored bytes (${this.#sha256}) differs from the manifest (${expect.sha256}): the file is corrupt or was changed`
          : `sha256 of the decoded bytes (${this.#sha256}) differs from the manifest (${expect.sha256})`,
      );
    }
    return null;
  }
}
