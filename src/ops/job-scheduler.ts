import { Cron } from 'croner';
import type { Logger } from 'pino';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import type { OpsMetrics } from './ops-metrics.js';

/** One job the scheduler runs on a cron expression. */
export interface ScheduledJob {
  /** `backup`, `verify`, `prune`, `drill`: the metrics label and the name in logs and alerts. */
  readonly name: string;
  /** Croner syntax (5 fields, or 6 with seconds first); empty: the job never runs. */
  readonly schedule: string;
  /** The setting the expression came from, named in the error when it does not parse. */
  readonly setting?: string;
  /** The work. Rejects on failure. `signal` aborts when the scheduler stops. */
  run(signal: AbortSignal): Promise<void>;
}

/** What the scheduler did, in order; the ops role and tests follow it. */
export type JobEvent =
  | { readonly type: 'started'; readonly job: string; readonly scheduledFor: number; readonly at: number }
  | {
      readonly type: 'finished';
      readonly job: string;
      readonly scheduledFor: number;
      readonly at: number;
      readonly outcome: 'success' | 'failure';
      readonly durationMs: number;
      readonly error?: Error;
    }
  | { readonly type: 'skipped'; readonly job: string; readonly scheduledFor: number; readonly at: number; readonly runningSince: number };

/** How a {@link JobScheduler} runs: its clock, where it logs and counts, and who hears of failures. */
export interface JobSchedulerOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly metrics?: OpsMetrics;
  /** IANA zone the cron expressions are read in; default the machine's local zone, as cron does. */
  readonly timezone?: string;
  /** Called (and awaited) after a run failed, e.g. to raise `job_failed`; must not throw. */
  readonly onFailure?: (job: ScheduledJob, error: Error) => Promise<void>;
  readonly onEvent?: (event: JobEvent) => void;
}

interface Entry {
  readonly job: ScheduledJob;
  readonly cron: Cron;
  running?: { readonly since: number; readonly done: Promise<void> };
}

/**
 * Runs jobs at their cron times, one run per job at a time.
 *
 * Croner supplies the calendar (`nextRun(from)`); the waiting is done here against an
 * injected {@link Clock}, because croner's own timers read the machine clock and could not
 * be driven by a test. Overlap is handled as croner's `protect` option does it: a job
 * still running when its next time comes skips that time (logged, counted as `skipped`)
 * and runs again at the first time after it finished. Missed times are not made up: after
 * a stall the next run is the next time from now, never a burst of catch-up runs.
 *
 * @example
 * const scheduler = new JobScheduler([{ name: 'backup', schedule: '5 * * * *', run: () => backupOnce() }], { log });
 * scheduler.start();
 * // …
 * await scheduler.stop();
 */
export class JobScheduler {
  readonly #entries: readonly Entry[];
  readonly #options: JobSchedulerOptions & { readonly clock: Clock };
  readonly #stopping = new AbortController();
  #loops: Promise<void>[] = [];

  /** @throws Error naming the job and its setting when a cron expression does not parse. */
  constructor(jobs: readonly ScheduledJob[], options: JobSchedulerOptions) {
    this.#options = Object.freeze({ ...options, clock: options.clock ?? systemClock });
    this.#entries = jobs
      .filter((job) => job.schedule.trim() !== '')
      .map((job) => {
        try {
          // paused and without a function: used only as a calendar, it starts no timer.
          return { job, cron: new Cron(job.schedule.trim(), { paused: true, timezone: options.timezone }) };
        } catch (err) {
          throw new Error(
            `the ${job.name} job's cron expression ${JSON.stringify(job.schedule)}${job.setting ? ` (${job.setting})` : ''} is not valid: ` +
              `${(err as Error).message}; use croner syntax such as "5 * * * *", or empty to turn the job off`,
          );
        }
      });
  }

  /** The jobs that have a schedule, and when each runs next (from the clock's now). */
  upcoming(): { readonly job: string; readonly schedule: string; readonly next: Date | null }[] {
    const now = new Date(this.#options.clock.now());
    return this.#entries.map(({ job, cron }) => ({ job: job.name, schedule: job.schedule, next: cron.nextRun(now) }));
  }

  /** Starts waiting for every job's next time. */
  start(): void {
    if (this.#loops.length > 0 || this.#stopping.signal.aborted) return;
    this.#loops = this.#entries.map((entry) => this.#loop(entry));
    for (const { job, next } of this.upcoming()) {
      this.#options.log.info({ job, next: next?.toISOString() ?? null }, `scheduler: ${job} runs next at ${next?.toISOString() ?? 'never'}`);
    }
  }

  /**
   * Stops scheduling, aborts the signal running jobs were given, and waits for them to
   * end: a backup is not cut off half-way by a shutdown unless it honours the signal.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.all(this.#loops);
    await Promise.all(this.#entries.map((entry) => entry.running?.done));
  }

  async #loop(entry: Entry): Promise<void> {
    const { clock } = this.#options;
    const signal = this.#stopping.signal;
    let from = clock.now();
    while (!signal.aborted) {
      const due = entry.cron.nextRun(new Date(from))?.getTime();
      if (due === undefined) return;
      // The clock may sleep long or short (capped timers, a fake clock): trust only now().
      while (!signal.aborted && clock.now() < due) await clock.sleep(due - clock.now(), signal);
      if (signal.aborted) return;
      this.#fire(entry, due);
      from = Math.max(due, clock.now());
    }
  }

  #fire(entry: Entry, scheduledFor: number): void {
    const { clock, log, metrics, onEvent } = this.#options;
    const job = entry.job.name;
    const at = clock.now();
    if (entry.running) {
      metrics?.jobRuns.inc({ job, outcome: 'skipped' });
      log.warn(
        { job, scheduledFor: new Date(scheduledFor).toISOString(), runningSince: new Date(entry.running.since).toISOString() },
        `scheduler: skipped ${job} at its cron time: the run started ${new Date(entry.running.since).toISOString()} is still going`,
      );
      onEvent?.({ type: 'skipped', job, scheduledFor, at, runningSince: entry.running.since });
      return;
    }
    // Set before the first await, so the next cron time sees it whatever the job does.
    const done = this.#run(entry, scheduledFor, at)
      .catch((err: unknown) => log.error({ job, err }, 'scheduler: a job listener failed'))
      .finally(() => (entry.running = undefined));
    entry.running = { since: at, done };
  }

  async #run(entry: Entry, scheduledFor: number, started: number): Promise<void> {
    const { clock, log, metrics, onEvent, onFailure } = this.#options;
    const job = entry.job.name;
    metrics?.jobRunning.set({ job }, 1);
    onEvent?.({ type: 'started', job, scheduledFor, at: started });
    log.info({ job, scheduledFor: new Date(scheduledFor).toISOString() }, `scheduler: ${job} started`);
    let error: Error | undefined;
    try {
      await entry.job.run(this.#stopping.signal);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    const at = clock.now();
    const durationMs = at - started;
    metrics?.jobRunning.set({ job }, 0);
    metrics?.jobDurationSeconds.observe({ job }, durationMs / 1000);
    metrics?.jobRuns.inc({ job, outcome: error ? 'failure' : 'success' });
    if (error) {
      log.error({ job, err: error, durationMs }, `scheduler: ${job} failed after ${durationMs} ms: ${error.message}`);
      await onFailure?.(entry.job, error).catch((err: unknown) => log.error({ job, err }, 'scheduler: reporting a failed job failed'));
    } else {
      metrics?.jobLastSuccess.set({ job }, at / 1000);
      log.info({ job, durationMs }, `scheduler: ${job} finished in ${durationMs} ms`);
    }
    onEvent?.({ type: 'finished', job, scheduledFor, at, outcome: error ? 'failure' : 'success', durationMs, ...(error ? { error } : {}) });
  }
}
