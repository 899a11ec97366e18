import { PassThrough } from 'node:stream';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactDecipher } from './artifact-cipher.js';
import { decompressor } from './artifact-compression.js';
import { ArtifactError } from './artifact-error.js';
import type { BackupKey } from './backup-key.js';
import type { ArtifactRecord } from './backup-manifest.js';
import { DigestTap } from './digest-tap.js';

/**
 * Fails with a clear `key` error before any byte is read when the artifact needs a key we
 * do not have, or another key than ours.
 */
export function checkArtifactKey(record: ArtifactRecord, key: BackupKey | undefined): void {
  if (record.encryption === undefined) return;
  if (key === undefined) {
    throw new ArtifactError(
      'key',
      `${record.name} is encrypted with key id ${record.encryption.keyId} and no backup key is configured; set backupKey or backupKeyFile`,
      record.name,
    );
  }
  if (key.id !== record.encryption.keyId) {
    throw new ArtifactError(
      'key',
      `wrong key (key id ${key.id}, manifest says ${record.encryption.keyId}): ${record.name} was encrypted with another key; ` +
        'set backupKey or backupKeyFile to the key with that id',
      record.name,
    );
  }
}

/**
 * The streams that undo what {@link sealArtifact} did to one artifact: decryption (with the
 * key check) and decompression; `decompress` is the stream whose failures mean damaged
 * compressed bytes.
 */
export function decodingStages(record: ArtifactRecord, key: BackupKey | undefined): { stages: Duplex[]; decompress?: Duplex } {
  checkArtifactKey(record, key);
  const stages: Duplex[] = [];
  if (record.encryption !== undefined) stages.push(new ArtifactDecipher(key!));
  const decompress = decompressor(record.compression);
  if (decompress) stages.push(decompress);
  return { stages, decompress };
}

/** Wraps a decompressor's error as an {@link ArtifactError} naming the check. */
export function decompressionError(error: Error): ArtifactError {
  return new ArtifactError('decompression', `decompression failed (${error.message}): the compressed bytes are damaged`);
}

/**
 * The raw bytes of a stored artifact, checked on the way: the stored bytes' size and
 * SHA-256, every encrypted chunk's tag, decompression, and the raw size and SHA-256. A failed
 * check errors the returned stream with an {@link ArtifactError} naming the artifact before
 * it ends, so a consumer (a restore) never takes a damaged artifact for a whole one.
 *
 * @example
 * await engine.restore(openArtifact(await target.get(key), record, backupKey), url);
 */
export function openArtifact(stored: Readable, record: ArtifactRecord, key: BackupKey | undefined): Readable {
  const { stages, decompress } = decodingStages(record, key);
  const rawTap = new DigestTap({ bytes: 'raw', size: record.rawSize, sha256: record.rawSha256 });
  const out = new PassThrough();
  let decompressFailure: Error | undefined;
  decompress?.once('error', (error: Error) => {
    decompressFailure = error;
  });
  // The tap is piped, not part of the pipeline, so that a failure reaches the consumer
  // classified (the pipeline would destroy `out` with the raw error first).
  rawTap.pipe(out, { end: false });
  rawTap.once('end', () => {
    if (!out.destroyed) out.end();
  });
  pipeline([stored, new DigestTap({ bytes: 'stored', size: record.size, sha256: record.sha256 }), ...stages, rawTap]).catch((error: Error) => {
    const classified =
      error instanceof ArtifactError
        ? error
        : decompressFailure !== undefined
          ? decompressionError(decompressFailure)
          : new Error(`reading ${record.name} failed: ${error.message}`);
    out.destroy(classified instanceof ArtifactError ? classified.forArtifact(record.name) : classified);
  });
  return out;
}
