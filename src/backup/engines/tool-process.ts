import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { pipeline, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { findTool } from './tool-locator.js';

/** How much of a tool's stderr is kept for the error message: the end is where tools explain. */
const STDERR_TAIL_BYTES = 8 * 1024;
const STDERR_TAIL_LINES = 15;
/** Most stdout {@link runTool} collects: it is for short answers (`--version`, reports). */
const STDOUT_LIMIT_BYTES = 1024 * 1024;
/** After SIGTERM, how long a tool gets to clean up before SIGKILL. */
const KILL_GRACE_MS = 3_000;

/** One run of an external tool. */
export interface ToolInvocation {
  /** Short name for messages, e.g. `mariadb-dump`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /**
   * The child's whole environment. Nothing of ours is inherited, so a stray `PGHOST`,
   * `MYSQL_HOST` or `PGPASSWORD` in the service's environment cannot redirect the tool.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Sees every stderr line, e.g. to pick the binlog position mariabackup reports there. */
  readonly onStderrLine?: (line: string) => void;
  /** Kills the tool when it runs longer than this; default: no limit. */
  readonly timeoutMs?: number;
  /**
   * The tool prints its product through C stdio (mariadb-dump, pg_dump): run it under
   * coreutils' `stdbuf -o1M` so stdout is written in large blocks. mariadb-dump otherwise
   * writes a few kilobytes at a time, and the dump reached Node in about 28,000 chunks of
   * 6 KB for 160 MB instead of 2,700 of 58 KB; reading it cost twice the CPU. Without
   * `stdbuf` the tool runs as it is.
   */
  readonly blockBufferedStdout?: boolean;
}

/** coreutils' stdbuf, when installed (it is on Debian, where coreutils is essential). */
const STDBUF = findTool('stdbuf');

/** A tool whose stdout is being streamed. */
export interface RunningTool {
  /**
   * The tool's stdout. It ends only after the tool exited with code 0, and errors with the
   * tool's stderr otherwise, so a consumer storing it never takes a failed dump for complete.
   * Destroying it kills the tool.
   */
  readonly stdout: Readable;
  /** Resolves when the tool exited with code 0; rejects with a {@link ToolFailedError} otherwise. */
  readonly exited: Promise<void>;
}

/** A tool exited with a non-zero code, was killed, or could not start. */
export class ToolFailedError extends Error {
  /** The tool's exit code; null when a signal ended it or it never started. */
  readonly exitCode: number | null;
  /** The last lines the tool wrote to stderr. */
  readonly stderrTail: string;

  constructor(message: string, exitCode: number | null, stderrTail: string) {
    super(message);
    this.name = 'ToolFailedError';
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/**
 * Starts a tool whose stdout is the product (a dump) and streams it.
 *
 * @example
 * const dump = startTool({ name: 'pg_dump', command, args, env });
 * await pipeline(dump.stdout, createWriteStream(file));
 * await dump.exited;
 */
export function startTool(invocation: ToolInvocation): RunningTool {
  const { child, exited } = spawnTool(invocation, 'ignore');
  const stdout = child.stdout as Readable;
  const output = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      callback(null, chunk);
    },
    flush(callback: TransformCallback): void {
      exited.then(() => callback(), (error: Error) => callback(error));
    },
  });
  pipeline(stdout, output, (error) => {
    // The consumer gave up (destroyed the stream): the tool must not go on writing into a
    // closed pipe, nor hold a transaction open on the server.
    if (error !== undefined && error !== null) stopTool(child);
  });
  return { stdout: output, exited };
}

/** What a tool printed; stdout is cut at 1 MiB, stderr keeps its last lines. */
export interface ToolOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a tool to the end and returns what it printed (stdout up to 1 MiB), feeding it
 * `input` on stdin when given (a restore). When `input` fails half-way the tool is killed
 * before its stdin closes, so a client reading SQL never mistakes a cut-off dump for the end.
 */
export async function runTool(invocation: ToolInvocation, input?: Readable): Promise<ToolOutput> {
  const { child, exited, stderr } = spawnTool(invocation, input === undefined ? 'ignore' : 'pipe');
  const chunks: Buffer[] = [];
  let collected = 0;
  (child.stdout as Readable).on('data', (chunk: Buffer) => {
    if (collected >= STDOUT_LIMIT_BYTES) return;
    chunks.push(chunk);
    collected += chunk.length;
  });
  let inputError: Error | undefined;
  if (input !== undefined && child.stdin !== null) {
    // EPIPE when the tool exits early: its own exit status says why.
    child.stdin.on('error', () => undefined);
    input.on('error', (error: Error) => {
      inputError ??= error;
      child.kill('SIGKILL');
    });
    // pipe(), unlike pipeline(), leaves stdin open when the input errors: see above.
    input.pipe(child.stdin);
  }
  try {
    await exited;
  } catch (error) {
    if (inputError !== undefined) {
      throw new Error(`${invocation.name} was stopped because reading its input failed: ${inputError.message}`, { cause: inputError });
    }
    throw error;
  }
  if (inputError !== undefined) {
    throw new Error(`${invocation.name} finished, but reading its input failed: ${inputError.message}`, { cause: inputError });
  }
  return { stdout: Buffer.concat(chunks).toString('utf8'), stderr: stderr.tail() };
}

function spawnTool(
  invocation: ToolInvocation,
  stdin: 'ignore' | 'pipe',
): { child: ChildProcess; exited: Promise<void>; stderr: StderrTail } {
  const buffered = invocation.blockBufferedStdout === true && STDBUF !== undefined;
  // stdbuf sets up the buffering and execs the tool: the child's pid is still the tool's.
  const [command, args] = buffered ? [STDBUF!, ['-o1M', invocation.command, ...invocation.args]] : [invocation.command, [...invocation.args]];
  const child = spawn(command, args, {
    env: { ...invocation.env },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  const stderr = new StderrTail(invocation.onStderrLine);
  child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
  let timedOut = false;
  const timer =
    invocation.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          stopTool(child);
        }, invocation.timeoutMs);
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (error: Error) => {
      clearTimeout(timer);
      reject(new ToolFailedError(`${invocation.name} could not be started (${invocation.command}): ${error.message}`, null, ''));
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      stderr.end();
      if (code === 0) {
        resolve();
        return;
      }
      const tail = stderr.tail();
      const how = timedOut
        ? `was killed after running longer than ${invocation.timeoutMs} ms`
        : code === null
          ? `was killed by ${signal ?? 'a signal'}`
          : `exited with code ${code}`;
      reject(new ToolFailedError(`${invocation.name} ${how}${tail === '' ? ' and printed nothing on stderr' : `: ${tail}`}`, code, tail));
    });
  });
  // A caller that stops reading may never await this; the stream carries the same error.
  exited.catch(() => undefined);
  return { child, exited, stderr };
}

function stopTool(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const escalate = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, KILL_GRACE_MS);
  escalate.unref();
  child.once('close', () => clearTimeout(escalate));
}

/** The end of a tool's stderr, line by line for a watcher. */
class StderrTail {
  readonly #onLine: ((line: string) => void) | undefined;
  #kept = '';
  #partialLine = '';

  constructor(onLine: ((line: string) => void) | undefined) {
    this.#onLine = onLine;
  }

  add(chunk: Buffer): void {
    const text = chunk.toString('utf8');
    this.#kept = (this.#kept + text).slice(-STDERR_TAIL_BYTES);
    if (this.#onLine === undefined) return;
    const lines = (this.#partialLine + text).split('\n');
    this.#partialLine = lines.pop() ?? '';
    for (const line of lines) this.#onLine(line);
  }

  end(): void {
    if (this.#partialLine !== '') this.#onLine?.(this.#partialLine);
    this.#partialLine = '';
  }

  tail(): string {
    return this.#kept
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line !== '')
      .slice(-STDERR_TAIL_LINES)
      .join('\n');
  }
}

/**
 * Settles when a consumer has read `stream` (a tool's output, possibly passed through
 * more transforms) to its end: with `onEnd()` then; with the stream's error when the tool
 * failed; and, when the consumer stopped early, with the tool's exit once it has exited,
 * so nothing is still running when this settles.
 */
export function whenReadToEnd<T>(stream: Readable, exited: Promise<void>, onEnd: () => T): Promise<T> {
  const outcome = new Promise<T>((resolve, reject) => {
    stream.once('end', () => resolve(onEnd()));
    stream.once('error', reject);
    stream.once('close', () => {
      if (stream.readableEnded) return;
      exited.then(
        () => reject(new Error('the dump stream was closed before its end, though the tool finished')),
        (error: Error) => reject(new Error(`the dump stream was closed before its end, and the tool stopped: ${error.message}`, { cause: error })),
      );
    });
  });
  // A consumer that gave up may never await this.
  outcome.catch(() => undefined);
  return outcome;
}
