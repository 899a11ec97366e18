import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { basename, delimiter, join } from 'node:path';

/** A command line of one of the databases' own tools. */
export interface ToolCommand {
  /** Absolute path of the executable (see {@link requireTool}). */
  readonly command: string;
  readonly args: readonly string[];
  /** Variables added to the minimal environment of {@link toolEnvironment}, e.g. `MYSQL_PWD`. */
  readonly env?: Readonly<Record<string, string>>;
  /** When this process is root, run the tool as this user (PostgreSQL refuses root). */
  readonly runAsUser?: string;
  readonly cwd?: string;
}

/** How a tool process ended. */
export interface ToolExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

// Debian keeps server binaries in sbin, which a non-root PATH often lacks.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];
const STDERR_TAIL_BYTES = 8192;

/** True when this process runs as root. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The absolute path of `name` in PATH (or the sbin folders), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of name.includes('/') ? [''] : dirs) {
    const candidate = dir === '' ? name : join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/**
 * The absolute path of `name`, or an error that names the package to install.
 *
 * @example
 * const binlog = requireTool('mariadb-binlog', 'mariadb-client');
 */
export function requireTool(name: string, debianPackage: string): string {
  const found = findTool(name);
  if (found === undefined) {
    throw new Error(`${name} was not found in PATH; point-in-time recovery drives it; install it (Debian: apt-get install ${debianPackage})`);
  }
  return found;
}

/**
 * The environment a tool runs with: PATH, a UTF-8 C locale and UTC, plus `extra`.
 * Nothing else is inherited, so an exported PGPASSWORD, PGHOST or MYSQL_HOST cannot
 * redirect a tool to another server; UTC makes every date a tool reads or prints
 * (`--stop-datetime`, log lines) mean the same instant everywhere.
 */
export function toolEnvironment(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC', ...extra };
}

/**
 * The command line that runs `command` so that it gets `deathSignal` when this process
 * dies (util-linux `setpriv --pdeathsig`, which execs: the pid is the tool's own), and,
 * when we are root and `runAsUser` is given, as that user.
 */
function wrappedCommand(tool: ToolCommand, deathSignal: NodeJS.Signals): { command: string; args: string[] } {
  const switchUser = tool.runAsUser !== undefined && isRoot();
  const setpriv = findTool('setpriv');
  if (setpriv === undefined) {
    if (switchUser) {
      throw new Error(`setpriv (util-linux) is needed to run ${basename(tool.command)} as ${tool.runAsUser ?? ''} while we are root; install util-linux or run as a normal user`);
    }
    return { command: tool.command, args: [...tool.args] };
  }
  const user = tool.runAsUser ?? '';
  const userArgs = switchUser ? ['--reuid', user, '--regid', user, '--init-groups'] : [];
  return { command: setpriv, args: [...userArgs, '--pdeathsig', deathSignal, '--', tool.command, ...tool.args] };
}

/** A tool failed: which one, how it ended, and the end of what it printed. */
export class ToolError extends Error {
  readonly tool: string;
  readonly exit: ToolExit;
  readonly stderr: string;

  constructor(tool: string, exit: ToolExit, stderr: string, what: string) {
    const ended = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
    super(`${what}: ${tool} ${ended}${stderr.trim() === '' ? '' : `:\n${stderr.trim()}`}`);
    this.name = 'ToolError';
    this.tool = tool;
    this.exit = exit;
    this.stderr = stderr;
  }
}

/**
 * One running tool process: its pid, its exit, and the tail of its stderr. Tied to this
 * process by a parent-death signal, so a crashed Seckill leaves no archiver streaming on.
 */
export class RunningTool {
  readonly name: string;
  readonly pid: number;
  readonly startedAt: Date;
  /** The child itself, for its stdio streams. */
  readonly child: ChildProcess;
  /** Resolves (never rejects) when the process has exited. */
  readonly exited: Promise<ToolExit>;
  #stderr = '';
  #exit: ToolExit | undefined;

  constructor(tool: ToolCommand, stdio: StdioOptions, deathSignal: NodeJS.Signals = 'SIGTERM') {
    const { command, args } = wrappedCommand(tool, deathSignal);
    this.name = basename(tool.command);
    this.child = spawn(command, args, { stdio, env: toolEnvironment(tool.env), cwd: tool.cwd });
    this.startedAt = new Date();
    this.exited = new Promise<ToolExit>((resolve) => {
      this.child.once('error', (error) => {
        this.#stderr += `could not start ${tool.command}: ${error.message}\n`;
        this.#exit = { code: 127, signal: null };
        resolve(this.#exit);
      });
      this.child.once('close', (code, signal) => {
        this.#exit ??= { code, signal };
        resolve(this.#exit);
      });
    });
    this.pid = this.child.pid ?? -1;
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL_BYTES);
    });
  }

  /** How it ended, or undefined while it runs. */
  get exitStatus(): ToolExit | undefined {
    return this.#exit;
  }

  /** The last few kilobytes it wrote to stderr. */
  get stderrTail(): string {
    return this.#stderr;
  }

  /** Waits for the exit and throws a {@link ToolError} unless it exited with code 0. */
  async succeeded(what: string): Promise<void> {
    const exit = await this.exited;
    if (exit.code !== 0) throw new ToolError(this.name, exit, this.#stderr, what);
  }

  /** Sends `signal`, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<ToolExit> {
    if (this.#exit !== undefined) return this.#exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Runs a tool to completion and returns its stdout; throws a {@link ToolError} quoting
 * its stderr when it fails.
 *
 * @param what - what the caller was doing, for the error message ("creating slot x").
 */
export async function runTool(tool: ToolCommand, what: string): Promise<string> {
  const running = new RunningTool(tool, ['ignore', 'pipe', 'pipe']);
  let stdout = '';
  running.child.stdout?.setEncoding('utf8');
  running.child.stdout?.on('data', (text: string) => {
    stdout += text;
  });
  await running.succeeded(what);
  return stdout;
}
