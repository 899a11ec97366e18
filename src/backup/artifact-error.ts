/**
 * The checks an artifact passes on its way back from a target, in the order they run:
 * it is there, its stored bytes have the manifest's size and SHA-256, it was encrypted with
 * our key, every chunk authenticates, it decompresses, and the raw bytes have the manifest's
 * size and SHA-256.
 */
export type ArtifactCheck =
  | 'present'
  | 'size'
  | 'sha256'
  | 'key'
  | 'authentication'
  | 'format'
  | 'decompression'
  | 'raw-size'
  | 'raw-sha256';

/**
 * An artifact failed one check. The message names the check and what to do; `artifact` is
 * filled in by whoever knows the file name (the verifier, the restore).
 */
export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';

  constructor(
    readonly check: ArtifactCheck,
    message: string,
    readonly artifact?: string,
  ) {
    super(message);
  }

  /** The same failure, naming the artifact it happened to. */
  forArtifact(artifact: string): ArtifactError {
    return new ArtifactError(this.check, `${artifact}: ${this.message}`, artifact);
  }
}
