import type { Logger } from 'pino';
import { pruneBackups, runBackup, verifyBackups } from '../backup/index.js';
import type { BackupRunResult, ProgressEvent } from '../backup/index.js';
import type { SeckillConfig } from '../config/config.js';
import { runDrill } from '../drill/run-drill.js';
import type { AlertSink } from './alert-sink.js';
import type { ScheduledJob } from './job-scheduler.js';
import type { OpsMetrics } from './ops-metrics.js';

/**
 * A job failure whose alert was already raised with a more precise name
 * (`tool_version_mismatch`, `drill_failed`), so the scheduler does not add `job_failed`.
 */
export class AlertedJobFailure extends Error {
  override readonly name = 'AlertedJobFailure';
}

/** What the ops jobs need from the running ops role. */
export interface OpsJobContext {
  readonly config: SeckillConfig;
  readonly log: Logger;
  readonly alerts: AlertSink;
  readonly metrics: OpsMetrics;
  /** Re-checks the backup policy at once (after a backup or a drill changed the catalog). */
  checkPolicy(): Promise<unknown>;
}

/**
 * Whether a backup was refused because the dump tool cannot dump the server's version.
 * The result has no structured reason yet, so this reads `runBackup`'s refusal wording.
 */
export function isToolVersionRefusal(result: BackupRunResult): boolean {
  return result.manifest === undefined && /^refusing to back up: .* cannot faithfully dump/.test(result.error ?? '');
}

function progressLog(log: Logger, job: string): (event: ProgressEvent) => void {
  return (event) => log.debug({ job, step: event.step, bytes: event.bytes }, event.message);
}

/**
 * The scheduled jobs of the ops role, from the cron settings: `backup` (database and file
 * sets to every target), `verify` (every complete backup on every target), `prune` (the
 * retention policy, applied), `drill` (the newest backup of each target). A job rejects when
 * its work failed, which the scheduler reports as `job_failed` unless a sharper alert was
 * raised here already.
 */
export function opsJobs(context: OpsJobContext): ScheduledJob[] {
  const { config, log, alerts } = context;
  return [
    {
      name: 'backup',
      schedule: config.backupSchedule,
      setting: 'backupSchedule',
      async run() {
        const result = await runBackup(config, { db: true, files: true }, progressLog(log, 'backup'));
        for (const warning of result.warnings) log.warn({ job: 'backup' }, warning);
        if (isToolVersionRefusal(result)) {
          await alerts.raise({
            alert: 'tool_version_mismatch',
            severity: 'critical',
            summary: `${result.error}; install a dump tool of the server's version (or newer) on the ops host; no backup is taken until then`,
            details: { job: 'backup', error: result.error },
          });
          throw new AlertedJobFailure(result.error);
        }
        // Shrink and freshness are judged on the new catalog at once, not minutes later.
        await context.checkPolicy();
        if (result.error) throw new Error(result.error);
        log.info({ job: 'backup', id: result.id, durationMs: result.durationMs }, `backup ${result.id} complete on every target`);
      },
    },
    {
      name: 'verify',
      schedule: config.verifySchedule,
      setting: 'verifySchedule',
      async run() {
        const result = await verifyBackups(config, { all: true }, progressLog(log, 'verify'));
        for (const warning of result.warnings) log.warn({ job: 'verify' }, warning);
        if (result.error) throw new Error(result.error);
        log.info({ job: 'verify', backups: result.verdicts.length }, `verified ${result.verdicts.length} backups: all intact`);
      },
    },
    {
      name: 'prune',
      schedule: config.pruneSchedule,
      setting: 'pruneSchedule',
      async run() {
        const result = await pruneBackups(config, { apply: true }, progressLog(log, 'prune'));
        const deleted = result.targets.flatMap((t) => t.deleted.map((id) => `${t.target}/${id}`));
        if (deleted.length > 0) log.info({ job: 'prune', deleted }, `pruned ${deleted.length} backups`);
        const errors = [result.error, ...result.targets.flatMap((t) => t.errors)].filter((e): e is string => Boolean(e));
        if (errors.length > 0) throw new Error(errors.join('; '));
      },
    },
    {
      name: 'drill',
      schedule: config.drillSchedule,
      setting: 'drillSchedule',
      async run() {
        // Every target is drilled: the off-site copy is the one a disaster leaves.
        const failed: string[] = [];
        for (const target of config.backupTargets) {
          const report = await runDrill(config, { target: target.name, alerts, metrics: context.metrics, log }, progressLog(log, 'drill'));
          log[report.ok ? 'info' : 'error'](
            { job: 'drill', target: target.name, backupId: report.backupId, ok: report.ok, rtoMs: report.rtoMs, rpoSeconds: report.rpoSeconds },
            `drill of ${report.backupId ?? '(no backup)'} on ${target.name}: ${report.ok ? 'passed' : 'FAILED'}`,
          );
          if (!report.ok) failed.push(`${target.name}: ${report.checks.filter((c) => !c.ok).map((c) => c.name).join(', ')}`);
        }
        await context.checkPolicy();
        // runDrill raised drill_failed for each failure already.
        if (failed.length > 0) throw new AlertedJobFailure(`drill failed on ${failed.join('; ')}`);
      },
    },
  ];
}
