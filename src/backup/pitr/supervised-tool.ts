import type { ArchiverTiming } from './archiver-status.js';
import { RunningTool, type ToolCommand, type ToolExit } from './tool-process.js';

/** A tool that ran at least this long before it died counts as healthy: its next restart is quick again. */
const HEALTHY_RUN_MS = 60_000;

/** Options of {@link SupervisedTool}. */
export interface SupervisedToolOptions extends ArchiverTiming {
  /**
   * Builds the command line for each start; called again before every restart, because
   * where to resume (the newest binlog, the spool's last WAL segment) moves on.
   */
  readonly prepare: () => Promise<ToolCommand>;
  /** Told when the tool died on its own (not through stop), with why. */
  readonly onFailure?: (reason: string) => void;
}

function describeExit(exit: ToolExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
}

/**
 * Keeps one long-running tool alive: restarts it after it dies, waiting 1 s, 2 s, 4 s…
 * (at most the maximum delay) between attempts, so a server that is down is not
 * hammered and one that comes back is picked up again.
 */
export class SupervisedTool {
  readonly #options: SupervisedToolOptions;
  #current: RunningTool | undefined;
  #stopping = false;
  #failuresInARow = 0;
  #restarts = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SupervisedToolOptions) {
    this.#options = Object.freeze({ ...options });
  }

  /** True while the tool runs. */
  get running(): boolean {
    return this.#current !== undefined && this.#current.exitStatus === undefined;
  }

  /** The running tool's pid. */
  get pid(): number | undefined {
    return this.running ? this.#current?.pid : undefined;
  }

  /** Restarts after the tool died. */
  get restarts(): number {
    return this.#restarts;
  }

  /** When the running tool started. */
  get startedAt(): Date | undefined {
    return this.running ? this.#current?.startedAt : undefined;
  }

  /** Starts the tool; a failing first `prepare` (server unreachable, no binlog) throws here. */
  async start(): Promise<void> {
    this.#stopping = false;
    this.#launch(await this.#options.prepare());
  }

  /** Stops the tool (SIGTERM, then SIGKILL) and cancels any pending restart. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#current?.stop('SIGTERM', 5000);
  }

  #launch(command: ToolCommand): void {
    const tool = new RunningTool(command, ['ignore', 'ignore', 'pipe']);
    // The archiver is a background service: it must not keep the process alive on its own.
    tool.child.unref();
    (tool.child.stderr as { unref?: () => void } | null)?.unref?.();
    this.#current = tool;
    void tool.exited.then((exit) => {
      if (this.#stopping || this.#current !== tool) return;
      const ranMs = Date.now() - tool.startedAt.getTime();
      this.#failuresInARow = ranMs >= HEALTHY_RUN_MS ? 1 : this.#failuresInARow + 1;
      this.#options.onFailure?.(`${tool.name} (pid ${tool.pid}) ${describeExit(exit)} after ${ranMs} ms${tool.stderrTail.trim() === '' ? '' : `: ${tool.stderrTail.trim()}`}`);
      this.#scheduleRestart();
    });
  }

  #scheduleRestart(): void {
    const first = this.#options.restartDelayMs ?? 1000;
    const delay = Math.min(this.#options.maxRestartDelayMs ?? 30_000, first * 2 ** (this.#failuresInARow - 1));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopping) return;
      this.#options
        .prepare()
        .then((command) => {
          if (this.#stopping) return;
          this.#restarts += 1;
          this.#launch(command);
        })
        .catch((error: unknown) => {
          this.#failuresInARow += 1;
          this.#options.onFailure?.(`could not restart: ${error instanceof Error ? error.message : String(error)}`);
          if (!this.#stopping) this.#scheduleRestart();
        });
    }, delay);
    this.#timer.unref();
  }
}
