import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactCipher } from './artifact-cipher.js';
import { compressor } from './artifact-compression.js';
import type { Compression } from './artifact-compression.js';
import type { BackupKey } from './backup-key.js';
import { DigestTap } from './digest-tap.js';

/** Sizes and checksums of one artifact, as the manifest records them. */
export interface SealedDigests {
  /** Bytes as stored (compressed and encrypted). */
  readonly size: number;
  readonly sha256: string;
  readonly rawSize: number;
  readonly rawSha256: string;
}

/** How {@link sealArtifact} treats the bytes. */
export interface SealOptions {
  readonly compression: Compression;
  /** Absent: stored unencrypted (tests and tools only; backups are always encrypted). */
  readonly key?: BackupKey;
  /** Told the raw and stored byte counts as the artifact streams (for progress). */
  readonly onBytes?: (rawBytes: number, storedBytes: number) => void;
}

/**
 * Streams raw bytes through compression and encryption into `destination`, computing the
 * SHA-256 and size of both the raw and the stored bytes on the way. Memory use is a few
 * chunks whatever the size: a 10 GB dump is never held whole.
 *
 * @example
 * const digests = await sealArtifact(dump.stream, fanout, { compression: 'zstd', key });
 */
export async function sealArtifact(raw: Readable, destination: Writable, options: SealOptions): Promise<SealedDigests> {
  const rawTap = new DigestTap();
  const onBytes = options.onBytes;
  const storedTap = new DigestTap(undefined, onBytes ? (stored) => onBytes(rawTap.bytes, stored) : undefined);
  const compress = compressor(options.compression);
  const stages = [raw, rawTap, ...(compress ? [compress] : []), ...(options.key ? [new ArtifactCipher(options.key)] : []), storedTap, destination];
  await pipeline(stages as [Readable, ...Writable[]]);
  return { size: storedTap.bytes, sha256: storedTap.sha256, rawSize: rawTap.bytes, rawSha256: rawTap.sha256 };
}
