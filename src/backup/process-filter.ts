import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { Duplex } from 'node:stream';
import type { Readable, Writable } from 'node:stream';

/** Most stderr kept for an error message; a tool that floods it must not fill memory. */
const STDERR_LIMIT = 8 * 1024;

/**
 * A command-line filter (`zstd -c`, `tar -x`…) as a stream: what is written goes to its
 * stdin, what it prints comes out. The output ends only after the process exited 0 and
 * all input was taken, so a tool that dies half-way fails the pipeline instead of passing
 * on a short output. Input left after the tool finished (tar stops reading at its
 * end-of-archive marker) is read and dropped, so checks upstream still see every byte.
 *
 * @example
 * await pipeline(source, new ProcessFilter('zstd', ['-q', '-c']), destination);
 */
export class ProcessFilter extends Duplex {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #label: string;
  #stderr = '';
  #exited = false;
  #succeeded = false;
  #inputDone = false;
  #pendingWrite: (() => void) | undefined;

  constructor(command: string, args: readonly string[], options: { readonly cwd?: string; readonly label?: string } = {}) {
    super();
    this.#label = options.label ?? `${command} ${args.join(' ')}`;
    this.#child = spawn(command, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < STDERR_LIMIT) this.#stderr += chunk.toString('utf8');
    });
    this.#child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#child.stdout.pause();
    });
    // EPIPE when the tool quit early: its exit status explains why, so wait for 'close'.
    this.#child.stdin.on('error', () => undefined);
    this.#child.once('error', (error: NodeJS.ErrnoException) => {
      this.#exited = true;
      const hint = error.code === 'ENOENT' ? `; install ${command} (Debian: apt-get install ${command})` : '';
      this.destroy(new Error(`cannot run ${command}: ${error.message}${hint}`));
    });
    this.#child.once('close', (code, signal) => {
      this.#exited = true;
      this.#releaseWrite();
      if (code === 0) {
        this.#succeeded = true;
        this.#maybeEnd();
      } else {
        this.destroy(new Error(`${this.#label} failed (${signal ?? `exit status ${code}`}): ${this.#stderr.trim() || 'no message'}`));
      }
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#exited) {
      callback();
      return;
    }
    if (this.#child.stdin.write(chunk)) {
      callback();
      return;
    }
    this.#pendingWrite = () => callback();
    this.#child.stdin.once('drain', () => this.#releaseWrite());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#exited) this.#child.stdin.end();
    this.#inputDone = true;
    this.#maybeEnd();
    callback();
  }

  override _read(): void {
    this.#child.stdout.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
    callback(error);
  }

  #releaseWrite(): void {
    const pending = this.#pendingWrite;
    this.#pendingWrite = undefined;
    pending?.();
  }

  #maybeEnd(): void {
    if (this.#succeeded && this.#inputDone) this.push(null);
  }
}
