import { PassThrough, Writable } from 'node:stream';
import type { Readable } from 'node:stream';

/** Bytes a branch may buffer ahead of its slowest reader. */
const BRANCH_BUFFER = 1024 * 1024;

function drained(branch: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      branch.off('drain', done);
      branch.off('close', done);
      resolve();
    };
    branch.on('drain', done);
    branch.on('close', done);
  });
}

/**
 * Writes one stream to several readers at once (one per backup target), at the pace of the
 * slowest, so an artifact is read, compressed and encrypted once however many targets it
 * goes to. A reader that fails is {@link drop}ped and the others go on; when none is left
 * the fanout fails, which stops the dump feeding it.
 *
 * @example
 * const fanout = new ArtifactFanout(['local', 'offsite']);
 * const puts = targets.map((t) => t.put(key, fanout.branch(t.name)).catch((e) => fanout.drop(t.name, e)));
 * await sealArtifact(dump, fanout, options);
 */
export class ArtifactFanout extends Writable {
  readonly #branches = new Map<string, PassThrough>();
  readonly #dropped = new Map<string, Error>();

  constructor(names: readonly string[]) {
    super({ highWaterMark: BRANCH_BUFFER });
    for (const name of names) {
      const branch = new PassThrough({ highWaterMark: BRANCH_BUFFER });
      // A reader that failed before it started reading reports through its own promise.
      branch.on('error', () => undefined);
      this.#branches.set(name, branch);
    }
  }

  /** The stream the reader called `name` consumes. */
  branch(name: string): Readable {
    const branch = this.#branches.get(name);
    if (branch === undefined) throw new Error(`no live fanout branch named ${name}`);
    return branch;
  }

  /** Stops feeding `name` (its reader failed with `error`); the other readers go on. */
  drop(name: string, error: Error): void {
    const branch = this.#branches.get(name);
    if (branch === undefined) return;
    this.#branches.delete(name);
    this.#dropped.set(name, error);
    branch.destroy(error);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#branches.size === 0) {
      callback(this.#allFailed());
      return;
    }
    const waits: Promise<void>[] = [];
    for (const branch of this.#branches.values()) {
      if (!branch.write(chunk)) waits.push(drained(branch));
    }
    if (waits.length === 0) callback();
    else void Promise.all(waits).then(() => callback(this.#branches.size === 0 ? this.#allFailed() : null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#branches.size === 0) {
      callback(this.#allFailed());
      return;
    }
    for (const branch of this.#branches.values()) branch.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // After a normal end the branches still hold data their readers have not taken yet.
    for (const branch of this.#branches.values()) {
      if (error !== null || !branch.writableEnded) branch.destroy(error ?? new Error('the artifact stream was stopped before its end'));
    }
    callback(error);
  }

  #allFailed(): Error {
    const reasons = [...this.#dropped].map(([name, error]) => `${name}: ${error.message}`).join('; ');
    return new Error(`every target failed (${reasons})`);
  }
}
