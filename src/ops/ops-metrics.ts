import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What one scheduled run of a job ended as, for `seckill_job_runs_total{job,outcome}`. */
export type JobOutcome = 'success' | 'failure' | 'skipped';

/**
 * The Prometheus metrics of the ops role: scheduled jobs, backup freshness, drills and
 * alerts. They live in whatever registry the caller passes (the node's, so one `/metrics`
 * shows everything), and are created once per registry: the drill command, the scheduler
 * and the alert sink of one process share them instead of colliding on the names.
 *
 * @example
 * const metrics = OpsMetrics.in(node.metrics.registry);
 * metrics.jobRuns.inc({ job: 'backup', outcome: 'success' });
 */
export class OpsMetrics {
  static readonly #byRegistry = new WeakMap<Registry, OpsMetrics>();

  readonly registry: Registry;
  readonly jobRuns: Counter<'job' | 'outcome'>;
  readonly jobDurationSeconds: Histogram<'job'>;
  readonly jobLastSuccess: Gauge<'job'>;
  readonly jobRunning: Gauge<'job'>;
  /** Age of the newest complete backup, per target, as of the last policy check. */
  readonly backupAgeSeconds: Gauge<'target'>;
  /** 1 when the newest drill on the target passed, 0 when it failed. */
  readonly drillLastOk: Gauge<'target'>;
  readonly drillLastSuccess: Gauge<'target'>;
  readonly drillRtoSeconds: Gauge<'target'>;
  readonly drillRpoSeconds: Gauge<'target'>;
  readonly alerts: Counter<'alert'>;

  /** The ops metrics of `registry`, created on first use. */
  static in(registry: Registry = new Registry()): OpsMetrics {
    let metrics = OpsMetrics.#byRegistry.get(registry);
    if (!metrics) {
      metrics = new OpsMetrics(registry);
      OpsMetrics.#byRegistry.set(registry, metrics);
    }
    return metrics;
  }

  private constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    this.jobRuns = new Counter({
      name: 'seckill_job_runs_total',
      help: 'Scheduled job runs by outcome (skipped: the previous run was still going at its cron time)',
      labelNames: ['job', 'outcome'],
      registers,
    });
    this.jobDurationSeconds = new Histogram({
      name: 'seckill_job_duration_seconds',
      help: 'How long scheduled jobs ran',
      labelNames: ['job'],
      buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14_400],
      registers,
    });
    this.jobLastSuccess = new Gauge({
      name: 'seckill_job_last_success_timestamp_seconds',
      help: 'When each scheduled job last succeeded (Unix time)',
      labelNames: ['job'],
      registers,
    });
    this.jobRunning = new Gauge({
      name: 'seckill_job_running',
      help: '1 while a scheduled job runs',
      labelNames: ['job'],
      registers,
    });
    this.backupAgeSeconds = new Gauge({
      name: 'seckill_backup_age_seconds',
      help: 'Age of the newest complete backup on each target, as of the last policy check',
      labelNames: ['target'],
      registers,
    });
    this.drillLastOk = new Gauge({
      name: 'seckill_drill_last_ok',
      help: '1 when the newest drill on the target passed every check, 0 when it failed',
      labelNames: ['target'],
      registers,
    });
    this.drillLastSuccess = new Gauge({
      name: 'seckill_drill_last_success_timestamp_seconds',
      help: 'When a drill on the target last passed (Unix time)',
      labelNames: ['target'],
      registers,
    });
    this.drillRtoSeconds = new Gauge({
      name: 'seckill_drill_rto_seconds',
      help: 'Restore plus checks time of the newest drill (recovery time objective as measured)',
      labelNames: ['target'],
      registers,
    });
    this.drillRpoSeconds = new Gauge({
      name: 'seckill_drill_rpo_seconds',
      help: 'Age of the recovery point the newest drill restored (recovery point as measured)',
      labelNames: ['target'],
      registers,
    });
    this.alerts = new Counter({
      name: 'seckill_alerts_total',
      help: 'Alerts raised, by alert name (whether or not the webhook took them)',
      labelNames: ['alert'],
      registers,
    });
  }
}
