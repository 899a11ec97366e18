import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinary, findExecutable, isRoot } from './binaries.js';
import { atProcessExit } from './exit-cleanup.js';
import { killAndWaitSync, processIdentity, recordServerProcess } from './scratch-dir.js';

/** How a process ended: an exit code, or the signal that killed it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What to run, and where its output goes. */
export interface ProcessSpec {
  /** Short name for messages, e.g. `redis-server`. */
  readonly name: string;
  /** Absolute path of the executable (see `ensureBinary`). */
  readonly command: string;
  readonly args: readonly string[];
  /** File that receives stdout and stderr (appended). */
  readonly logFile: string;
  /** Further logs (the server's own log file) to quote when it fails. */
  readonly extraLogFiles?: readonly string[];
  /** When we are root, run as this user (PostgreSQL refuses root); ignored otherwise. */
  readonly runAsUser?: string;
  /** The complete environment; servers get a minimal one so PGPASSWORD and the like do not leak in. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Scratch folder whose owner record should name this process (for stale sweeps). */
  readonly scratchDir?: string;
}

/** Options for {@link ServerProcess.waitUntilReady}. */
export interface ReadinessOptions {
  /** Give up after this long; default 30 s. */
  readonly timeoutMs?: number;
  /** Pause between probes; default 25 ms. */
  readonly intervalMs?: number;
}

/**
 * The last lines of a log file, for error messages ("" when it does not exist).
 */
export function logTail(file: string, maxLines = 25): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-8192).trimEnd().split('\n').slice(-maxLines).join('\n');
  } catch {
    return '';
  }
}

function describeLogs(files: readonly string[]): string {
  const parts = files
    .map((file) => ({ file, tail: logTail(file) }))
    .filter(({ tail }) => tail !== '')
    // The folder is usually removed by the time anyone reads this: quote, do not point.
    .map(({ file, tail }) => `--- last lines of ${basename(file)} ---\n${tail}`);
  return parts.length === 0 ? `(no output in ${files.join(', ')})` : parts.join('\n');
}

function describeExit(exit: ProcessExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
}

/**
 * Thrown when a server does not become ready. `addressInUse` tells the caller that
 * another process took the port between `freePort()` and the server's bind, so trying
 * again on a new port will help.
 */
export class ServerStartError extends Error {
  readonly addressInUse: boolean;

  constructor(message: string, logText: string) {
    super(message);
    this.name = 'ServerStartError';
    this.addressInUse = /address already in use|EADDRINUSE|could not bind|could not create listen socket/i.test(logText);
  }
}

/**
 * The command line that runs `command` so that it receives `signal` when the process
 * that spawned it dies (prctl PR_SET_PDEATHSIG through util-linux `setpriv`), optionally
 * as another user. This is what keeps a SIGKILLed test run from leaving servers behind.
 * `setpriv` execs, so the spawned pid is the real server's pid.
 *
 * Without `setpriv` (non-Debian machines) the command runs plainly; the stale sweep in
 * `scratch-dir.ts` then stops leftovers on the next run.
 */
export async function parentDeathCommand(
  command: string,
  args: readonly string[],
  options: { readonly runAsUser?: string; readonly signal?: NodeJS.Signals } = {},
): Promise<{ command: string; args: string[] }> {
  const switchUser = options.runAsUser !== undefined && isRoot();
  const setpriv = switchUser ? await ensureBinary('setpriv', 'util-linux') : findExecutable('setpriv');
  if (setpriv === undefined) return { command, args: [...args] };
  const user = options.runAsUser ?? '';
  const userArgs = switchUser ? ['--reuid', user, '--regid', user, '--init-groups'] : [];
  return {
    command: setpriv,
    args: [...userArgs, '--pdeathsig', options.signal ?? 'SIGKILL', '--', command, ...args],
  };
}

async function spawnLogged(spec: ProcessSpec): Promise<ChildProcess> {
  const { command, args } = await parentDeathCommand(spec.command, spec.args, { runAsUser: spec.runAsUser });
  const log = openSync(spec.logFile, 'a');
  try {
    const child = spawn(command, args, {
      // A process group of its own: Ctrl-C in a terminal reaches the test runner only,
      // which then stops the servers in order instead of racing them.
      detached: true,
      stdio: ['ignore', log, log],
      env: spec.env ?? process.env,
      cwd: spec.cwd,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new Error(`could not start ${spec.name} (${spec.command}): ${error.message}`)));
    });
    return child;
  } finally {
    closeSync(log);
  }
}

function exitOf(child: ChildProcess): Promise<ProcessExit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * A server process started by the harness: spawned with its output in a log file, tied
 * to this process by a parent-death signal and an exit hook, and stopped with SIGTERM
 * then SIGKILL. It does not keep the Node event loop alive on its own, so a test file
 * that forgets to stop it still exits (the exit hook then kills it).
 *
 * @example
 * const server = await ServerProcess.start({ name: 'redis-server', command, args, logFile });
 * await server.waitUntilReady(() => pingRedis(port));
 * await server.stop();
 */
export class ServerProcess {
  /** Short name used in messages. */
  readonly name: string;
  /** The server's pid (not a wrapper's: `setpriv` execs). */
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ProcessExit>;
  readonly #child: ChildProcess;
  readonly #logFiles: readonly string[];
  #exit: ProcessExit | undefined;

  private constructor(spec: ProcessSpec, child: ChildProcess) {
    this.name = spec.name;
    this.#child = child;
    this.#logFiles = [spec.logFile, ...(spec.extraLogFiles ?? [])];
    if (child.pid === undefined) throw new Error(`${spec.name} started without a pid`);
    this.pid = child.pid;
    const identity = processIdentity(child.pid);
    const forget =
      identity === undefined ? () => undefined : atProcessExit('stop-processes', () => killAndWaitSync(identity));
    if (spec.scratchDir !== undefined) recordServerProcess(spec.scratchDir, child.pid);
    this.exited = exitOf(child).then((exit) => {
      this.#exit = exit;
      forget();
      return exit;
    });
    child.unref();
  }

  /** Spawns the process; resolves once it runs (not once it is ready). */
  static async start(spec: ProcessSpec): Promise<ServerProcess> {
    return new ServerProcess(spec, await spawnLogged(spec));
  }

  /** How it ended, or undefined while it runs. */
  get exitStatus(): ProcessExit | undefined {
    return this.#exit;
  }

  /** True until the exit has been observed. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines of its logs, for error messages. */
  describeLogs(): string {
    return describeLogs(this.#logFiles);
  }

  /**
   * Sends a signal (SIGKILL to simulate a crash, SIGSTOP/SIGCONT to simulate a hang).
   * @throws Error when the process has already exited.
   */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined) {
      throw new Error(`cannot send ${signal} to ${this.name} (pid ${this.pid}): it already ${describeExit(this.#exit)}`);
    }
    process.kill(this.pid, signal);
  }

  /**
   * Polls `probe` until it returns true. Fails fast, quoting the logs, when the process
   * exits first, and kills nothing: the caller decides (it may retry on another port).
   */
  async waitUntilReady(probe: () => Promise<boolean>, options: ReadinessOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exit !== undefined) {
        const logs = this.describeLogs();
        throw new ServerStartError(`${this.name} (pid ${this.pid}) ${describeExit(this.#exit)} before it was ready.\n${logs}`, logs);
      }
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) {
        const logs = this.describeLogs();
        throw new ServerStartError(
          `${this.name} (pid ${this.pid}) was not ready within ${timeoutMs} ms; it is still running, so it is slow or stuck.\n${logs}`,
          logs,
        );
      }
      await sleep(options.intervalMs ?? 25);
    }
  }

  /** Waits at most `timeoutMs` for the exit; true when it exited. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.#exit !== undefined) return true;
    // An unreferenced child does not keep the event loop alive; while someone waits, it must.
    this.#child.ref();
    const timer = new AbortController();
    try {
      const timeout = sleep(timeoutMs, false, { signal: timer.signal }).catch(() => false);
      return await Promise.race([this.exited.then(() => true), timeout]);
    } finally {
      // A pending timer would hold the event loop (and the test process) open.
      timer.abort();
      this.#child.unref();
    }
  }

  /**
   * Stops the process: `signal` (default SIGTERM, a clean shutdown), then SIGKILL when it
   * has not exited after `graceMs`; resolves once it has exited. Safe to call twice.
   */
  async stop(options: { readonly signal?: NodeJS.Signals; readonly graceMs?: number } = {}): Promise<ProcessExit> {
    if (this.#exit === undefined) {
      try {
        process.kill(this.pid, options.signal ?? 'SIGTERM');
        // A stopped (SIGSTOP) process would only act on the signal after SIGCONT.
        process.kill(this.pid, 'SIGCONT');
      } catch {
        // It exited meanwhile; the exit event follows.
      }
      if (!(await this.waitForExit(options.graceMs ?? 10_000))) {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
        if (!(await this.waitForExit(10_000))) {
          throw new Error(`${this.name} (pid ${this.pid}) did not exit even after SIGKILL; it is stuck in the kernel`);
        }
      }
    }
    return this.exited;
  }
}

/**
 * Runs a one-shot setup command (initdb, mariadb-install-db) to completion, with its
 * output in `spec.logFile`; throws with the log tail when it fails or takes too long.
 */
export async function runSetupCommand(spec: ProcessSpec & { readonly timeoutMs?: number }): Promise<void> {
  const setup = await ServerProcess.start(spec);
  const timeoutMs = spec.timeoutMs ?? 60_000;
  if (!(await setup.waitForExit(timeoutMs))) {
    // The whole group: setup scripts (mariadb-install-db) run their work in children.
    try {
      process.kill(-setup.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await setup.stop({ signal: 'SIGKILL' });
    throw new Error(`${basename(spec.command)} did not finish within ${timeoutMs} ms.\n${setup.describeLogs()}`);
  }
  const exit = await setup.exited;
  if (exit.code !== 0) {
    throw new Error(`${basename(spec.command)} ${describeExit(exit)}.\n${setup.describeLogs()}`);
  }
}
