/**
 * Last-chance cleanup when a test process ends without stopping its servers.
 *
 * A test file run alone (`node --test dist/test/x.test.js`) has no reliable place at
 * module scope to stop a server it shares between suites, and an interrupted run skips
 * `after` hooks. Node still runs `process.on('exit')` listeners, but only synchronous
 * code, so the tasks registered here must be synchronous (kill, wait, rmSync).
 */

/**
 * When a task runs: every `stop-processes` task runs before any `remove-files` task,
 * because a data folder must not be removed while its server still writes into it.
 */
export type ExitCleanupStage = 'stop-processes' | 'remove-files';

const tasks: Record<ExitCleanupStage, Set<() => void>> = {
  'stop-processes': new Set(),
  'remove-files': new Set(),
};
let installed = false;

function runAll(): void {
  for (const stage of ['stop-processes', 'remove-files'] as const) {
    for (const task of [...tasks[stage]]) {
      try {
        task();
      } catch (error) {
        // Cleanup of one server must not prevent cleanup of the others.
        process.stderr.write(`test harness: cleanup at exit failed: ${String(error)}\n`);
      }
    }
    tasks[stage].clear();
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  // Without a handler these signals end Node without 'exit' listeners running. node:test
  // and test/run.ts install their own handlers (which end in process.exit, running the
  // hook above); this one only acts when nobody else listens, as in a plain script.
  for (const [signal, number] of Object.entries(SIGNAL_NUMBERS) as [NodeJS.Signals, number][]) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.exit(128 + number);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Registers a synchronous task to run when the process exits, and returns a function
 * that unregisters it (call that once the resource was released the normal way).
 *
 * @example
 * const forget = atProcessExit('stop-processes', () => process.kill(pid, 'SIGKILL'));
 * await server.stop();
 * forget();
 */
export function atProcessExit(stage: ExitCleanupStage, task: () => void): () => void {
  install();
  tasks[stage].add(task);
  return () => {
    tasks[stage].delete(task);
  };
}
