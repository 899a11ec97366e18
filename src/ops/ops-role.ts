import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { closeTarget, openTarget } from '../backup/index.js';
import type { SeckillConfig } from '../config/config.js';
import { startMariaDbAutoFailover } from '../ha/mariadb-auto-failover.js';
import { AlertSink } from './alert-sink.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import { JobScheduler } from './job-scheduler.js';
import type { JobEvent } from './job-scheduler.js';
import { AlertedJobFailure, opsJobs } from './ops-jobs.js';
import { OpsMetrics } from './ops-metrics.js';
import { PolicyMonitor } from './policy-monitor.js';
import { TargetStateReader } from './target-state-reader.js';

/** The running ops role. */
export interface OpsRole {
  /** Stops scheduling and policy checks, and waits for a running job to end. */
  stop(): Promise<void>;
  /** Runs the policy checks now (also done every `policyIntervalMs`). */
  checkPolicy(): Promise<unknown>;
  /** Each job with a schedule, and when it runs next. */
  upcoming(): ReturnType<JobScheduler['upcoming']>;
}

/** Knobs that are not configuration: for tests, and for an embedding that knows better. */
export interface OpsRoleOptions {
  readonly clock?: Clock;
  /** How often the backup policy is checked. Default 5 minutes. */
  readonly policyIntervalMs?: number;
  /** IANA zone the cron expressions are read in; default the machine's. */
  readonly timezone?: string;
  readonly onJobEvent?: (event: JobEvent) => void;
}

const DEFAULT_POLICY_INTERVAL_MS = 5 * 60_000;

/**
 * Starts the ops role: backup, verify, prune and drill at their cron times (no job
 * overlapping itself), the backup policy checked every few minutes and after each backup
 * and drill, alerts to `alertWebhookUrl`, and the ops metrics in `registry` (pass the
 * node's, so its `/metrics` shows them).
 *
 * Run it in exactly one process of a deployment: two would take every backup twice.
 *
 * @throws Error when a cron setting does not parse (naming it), before anything starts.
 *
 * @example
 * const ops = config.roles.includes('ops') ? startOps(config, log, metrics.registry) : undefined;
 * // on shutdown:
 * await ops?.stop();
 */
export function startOps(config: SeckillConfig, log: Logger, registry: Registry = new Registry(), options: OpsRoleOptions = {}): OpsRole {
  const clock = options.clock ?? systemClock;
  const opsLog = log.child({ role: 'ops' });
  const metrics = OpsMetrics.in(registry);
  const alerts = new AlertSink({ webhookUrl: config.alertWebhookUrl, log: opsLog, metrics, clock });
  const reader = new TargetStateReader();
  const policy = new PolicyMonitor({
    settings: config,
    targets: config.backupTargets.map((t) => t.name),
    async readState(name) {
      const target = openTarget(config.backupTargets.find((t) => t.name === name)!);
      try {
        return await reader.read(target);
      } finally {
        closeTarget(target);
      }
    },
    alerts,
    log: opsLog,
    metrics,
    clock,
  });
  // One check at a time, so a slow target cannot pile checks up; a check asked for while
  // one runs gets a fresh one after it (the running one may predate the change that asked).
  let checking: Promise<unknown> | undefined;
  let queued: Promise<unknown> | undefined;
  const checkPolicy = (): Promise<unknown> => {
    if (checking === undefined) {
      checking = policy
        .check()
        .catch((err: unknown) => opsLog.error({ err }, 'ops: the policy check failed'))
        .finally(() => (checking = undefined));
      return checking;
    }
    queued ??= checking.then(() => {
      queued = undefined;
      return checkPolicy();
    });
    return queued;
  };

  const scheduler = new JobScheduler(opsJobs({ config, log: opsLog, alerts, metrics, checkPolicy }), {
    log: opsLog,
    clock,
    metrics,
    timezone: options.timezone,
    onEvent: options.onJobEvent,
    async onFailure(job, error) {
      if (error instanceof AlertedJobFailure) return;
      await alerts.raise({
        alert: 'job_failed',
        severity: 'critical',
        summary: `the scheduled ${job.name} job failed: ${error.message}`,
        details: { job: job.name, schedule: job.schedule, error: error.message },
      });
    },
  });
  // Off by default: promoting a database is an operator's call unless they delegate it.
  // Started before the scheduler, so a bad setting fails the start with nothing running.
  const failover = config.mariadbAutoFailover ? startMariaDbAutoFailover(config, opsLog) : undefined;
  scheduler.start();

  const stopping = new AbortController();
  const interval = options.policyIntervalMs ?? DEFAULT_POLICY_INTERVAL_MS;
  const policyLoop = (async () => {
    while (!stopping.signal.aborted) {
      await checkPolicy();
      await clock.sleep(interval, stopping.signal);
    }
  })();
  opsLog.info(
    { jobs: scheduler.upcoming().map((u) => ({ job: u.job, schedule: u.schedule, next: u.next?.toISOString() ?? null })), policyIntervalMs: interval },
    'ops role started',
  );

  return {
    async stop() {
      stopping.abort();
      await failover?.stop();
      await scheduler.stop();
      await policyLoop;
      await queued;
      await checking;
      opsLog.info('ops role stopped');
    },
    checkPolicy,
    upcoming: () => scheduler.upcoming(),
  };
}
