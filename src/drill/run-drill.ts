import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { closeTarget, formatBytes, listBackups, loadBackupKey, openTarget, readManifest, restoreBackup, verifyBackup, writeDrillReport } from '../backup/index.js';
import type { BackupKey, BackupManifest, BackupTarget, ProgressEvent } from '../backup/index.js';
import type { SeckillConfig } from '../config/config.js';
import { checkInvariants, countRows, engineIntegrity, snapshotSales } from '../backup/database-census.js';
import { AlertSink } from '../ops/alert-sink.js';
import type { OpsMetrics } from '../ops/ops-metrics.js';
import { failedChecks, renderDrillMarkdown } from './drill-report.js';
import type { DrillCheck, DrillReport } from './drill-report.js';
import { compareRowCounts, compareSaleSnapshots } from './manifest-comparison.js';
import { createScratchDatabase } from './scratch-database.js';
import type { ScratchDatabase } from './scratch-database.js';
import { smokeTestSales } from './smoke-test.js';

/** What to drill, and where to restore it. */
export interface DrillOptions {
  /** The backup to drill; default the newest complete database backup on the target. */
  readonly backupId?: string;
  /** Name of the target to restore from; default the first configured one. */
  readonly target?: string;
  /**
   * MariaDB/MySQL or PostgreSQL server to create the scratch database on (a URL with a
   * user allowed to CREATE DATABASE); default the server of `config.databaseUrl`.
   */
  readonly scratchServerUrl?: string;
  /** Folder for a SQLite scratch file; default the OS temp folder. */
  readonly scratchFolder?: string;
  /** Where a failed drill is reported; default a sink on `config.alertWebhookUrl`. */
  readonly alerts?: AlertSink;
  readonly metrics?: OpsMetrics;
  /** Logs of the drill and its smoke-test node; default warnings to stderr. */
  readonly log?: Logger;
}

/**
 * One step of a drill as it happens, for progress output: the drill's own steps (`pick`,
 * `verify`, `scratch`, `restore`, `check`, `smoke-test`, `cleanup`, `report`) and the
 * restore's events passed through.
 */
export interface DrillProgressEvent extends ProgressEvent {
  /** The check that just ended, on `check`, `smoke-test` and `cleanup` steps. */
  readonly check?: DrillCheck;
}

/** Receives a drill's progress; must not throw. */
export type DrillProgress = (event: DrillProgressEvent) => void;

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function drillId(startedAt: Date): string {
  return `${startedAt.toISOString().replace(/:/g, '-').replace('.', '-')}-${randomBytes(2).toString('hex')}`;
}

async function timed(name: string, work: () => Promise<Omit<DrillCheck, 'name' | 'durationMs'>>): Promise<DrillCheck> {
  const started = performance.now();
  try {
    const result = await work();
    return { name, ...result, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    return { name, ok: false, detail: `could not check: ${(err as Error).message}`, durationMs: Math.round(performance.now() - started) };
  }
}

function skipped(name: string, why: string): DrillCheck {
  return { name, ok: false, skipped: true, detail: `not run: ${why}` };
}

/** The newest complete backup with a database part, or the one asked for. */
async function pickBackup(target: BackupTarget, backupId: string | undefined): Promise<BackupManifest> {
  if (backupId !== undefined) {
    const manifest = await readManifest(target, backupId);
    if (!manifest.contents.database || !manifest.database) {
      throw new Error(`backup ${backupId} on target ${target.name} holds no database (only files); drill a backup taken with --db`);
    }
    return manifest;
  }
  const withDatabase = (await listBackups(target)).backups.filter((m) => m.contents.database && m.database);
  const newest = withDatabase.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
  if (!newest) {
    throw new Error(`target ${target.name} (${target.location}) holds no complete database backup to drill; run \`seckill backup run\` first`);
  }
  return newest;
}

/**
 * Proves a backup restores (invariant I6): restores it into a scratch database (a temp
 * SQLite file, or `seckill_drill_<random>` on a MariaDB/PostgreSQL server) and checks, in
 * order, the artifacts' checksums, the restore itself, the row counts against the
 * manifest, the engine's own integrity check, the flash-sale invariants, each sale against
 * the manifest's snapshot, and an application smoke test on the restored database. The
 * scratch database is dropped afterwards whatever happened.
 *
 * Never throws for a failed drill: the report says what failed (`ok` is true only when
 * every check passed). It is written as JSON and Markdown into the target's catalog, and a
 * failed drill raises `drill_failed` on the alert webhook.
 *
 * RTO is the time from the first check to the last (verify, restore, checks, smoke test);
 * RPO is the age of the restored recovery point at the end of the drill.
 *
 * @example
 * const report = await runDrill(config, {}, (e) => console.error(e.message));
 * if (!report.ok) process.exitCode = 1;
 */
export async function runDrill(config: SeckillConfig, options: DrillOptions, progress: DrillProgress = () => undefined): Promise<DrillReport> {
  const log = options.log ?? pino({ level: 'warn', name: 'seckill-drill' }, pino.destination(2));
  const alerts = options.alerts ?? new AlertSink({ webhookUrl: config.alertWebhookUrl, log, metrics: options.metrics });
  const startedAt = new Date();
  const id = drillId(startedAt);
  const setting = options.target === undefined ? config.backupTargets[0] : config.backupTargets.find((t) => t.name === options.target);
  const targetName = setting?.name ?? options.target ?? '(none)';
  const checks: DrillCheck[] = [];
  let manifest: BackupManifest | undefined;
  let scratch: ScratchDatabase | undefined;
  let scratchInfo: DrillReport['scratch'];
  let error: string | undefined;
  let rtoStarted: number | undefined;
  let rtoMs = 0;
  let restoreMs: number | undefined;
  let target: BackupTarget | undefined;
  /** The step under way, named as the failing check when it throws. */
  let stage = 'pick-backup';

  const record = (check: DrillCheck, step = 'check'): void => {
    checks.push(check);
    progress({ step, message: `${check.ok ? 'ok    ' : check.skipped ? 'skip  ' : 'FAILED'} ${check.name}: ${check.detail}`, check });
  };

  try {
    if (!setting) {
      throw new Error(`there is no backup target named ${options.target}; configured targets: ${config.backupTargets.map((t) => t.name).join(', ') || 'none'}`);
    }
    target = openTarget(setting);
    progress({ step: 'pick', message: `picking ${options.backupId ? `backup ${options.backupId}` : 'the newest complete backup'} on target ${target.name} (${target.location})` });
    manifest = await pickBackup(target, options.backupId);
    const database = manifest.database!;
    progress({ step: 'pick', message: `drilling backup ${manifest.id} (${database.engine}, taken ${manifest.createdAt}, ${plural(manifest.artifacts.length, 'artifact')})` });

    rtoStarted = performance.now();
    progress({ step: 'verify', message: 'verifying every artifact: fetch, SHA-256, decrypt, decompress' });
    const backupId = manifest.id;
    const openedTarget = target;
    let key: BackupKey | undefined;
    try {
      key = loadBackupKey(config, { create: false });
    } catch (err) {
      progress({ step: 'verify', message: `WARNING: ${(err as Error).message}; only sizes and checksums can be verified, and the restore will fail` });
    }
    record(await timed('checksums', async () => {
      const verdict = await verifyBackup(openedTarget, backupId, { key, progress });
      const broken = verdict.artifacts.filter((a) => !a.ok);
      return verdict.ok
        ? { ok: true, detail: `${plural(verdict.artifacts.length, 'artifact')} match the manifest (size, SHA-256, every encrypted chunk, decompression, raw SHA-256)` }
        : { ok: false, detail: broken.length > 0 ? broken.map((a) => `${a.name}: ${a.error ?? 'broken'}`).join('; ') : (verdict.error ?? 'verification failed') };
    }));

    stage = 'scratch';
    progress({ step: 'scratch', message: `creating a scratch ${database.engine} database` });
    scratch = await createScratchDatabase(database.engine, { serverUrl: options.scratchServerUrl ?? config.databaseUrl, folder: options.scratchFolder });
    scratchInfo = { location: scratch.location, dropped: false };
    progress({ step: 'restore', message: `restoring into ${scratch.location}` });
    stage = 'checks';
    const restoreStarted = performance.now();
    const scratchUrl = scratch.url;
    const restored = await timed('restore', async () => {
      const result = await restoreBackup(config, { id: backupId, to: scratchUrl, target: targetName }, progress);
      return result.ok
        ? { ok: true, detail: `restored ${formatBytes(result.bytes ?? 0)} of dump in ${((performance.now() - restoreStarted) / 1000).toFixed(2)} s` }
        : { ok: false, detail: result.error ?? 'the restore failed' };
    });
    restoreMs = restored.durationMs;
    record(restored);

    if (!restored.ok) {
      for (const name of ['row-counts', 'engine-integrity', 'invariants', 'sale-snapshot', 'smoke-test']) record(skipped(name, 'the restore failed'));
    } else {
      record(await timed('row-counts', async () => compareRowCounts(database.rowCounts, await countRows(scratchUrl))));
      record(await timed('engine-integrity', async () => {
        const integrity = await engineIntegrity(scratchUrl);
        return { ok: integrity.ok, detail: integrity.tool ? `${integrity.tool}: ${integrity.detail}` : integrity.detail };
      }));
      const invariants = await checkInvariants(scratchUrl).catch((err: Error) => err);
      if (invariants instanceof Error) record({ name: 'invariants', ok: false, detail: `could not check: ${invariants.message}` });
      else for (const check of invariants.checks) record({ name: `invariant: ${check.name}`, ok: check.ok, detail: check.detail });
      record(await timed('sale-snapshot', async () => compareSaleSnapshots(database.sales, await snapshotSales(scratchUrl))));
      progress({ step: 'smoke-test', message: `starting the application on the restored database and asking for ${database.sales.length} sales` });
      record(await smokeTestSales(scratchUrl, database.sales, log), 'smoke-test');
    }
    rtoMs = Math.round(performance.now() - rtoStarted);
  } catch (err) {
    error = (err as Error).message;
    if (rtoStarted !== undefined) rtoMs = Math.round(performance.now() - rtoStarted);
    record({ name: stage, ok: false, detail: error });
  } finally {
    if (scratch) {
      progress({ step: 'cleanup', message: `dropping the scratch database ${scratch.location}` });
      try {
        await scratch.drop();
        scratchInfo = { location: scratch.location, dropped: true };
      } catch (err) {
        scratchInfo = { location: scratch.location, dropped: false, dropError: (err as Error).message };
        record({ name: 'cleanup', ok: false, detail: `the scratch database ${scratch.location} could not be dropped: ${(err as Error).message}; drop it by hand` }, 'cleanup');
      }
    }
  }

  const finishedAt = new Date();
  let report: DrillReport = {
    formatVersion: 1,
    id,
    ok: checks.length > 0 && checks.every((c) => c.ok),
    ...(manifest ? { backupId: manifest.id, backupCreatedAt: manifest.createdAt, engine: manifest.database?.engine } : {}),
    target: targetName,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    rtoMs,
    ...(restoreMs !== undefined ? { restoreMs } : {}),
    ...(manifest ? { rpoSeconds: (finishedAt.getTime() - Date.parse(manifest.createdAt)) / 1000 } : {}),
    ...(scratchInfo ? { scratch: scratchInfo } : {}),
    checks,
    ...(error ? { error } : {}),
  };

  if (target && manifest) {
    progress({ step: 'report', message: `writing the report into the catalog of target ${target.name}` });
    report = { ...report, stored: await storeReport(target, manifest.id, report) };
  }
  if (target) closeTarget(target);

  options.metrics?.drillLastOk.set({ target: targetName }, report.ok ? 1 : 0);
  options.metrics?.drillRtoSeconds.set({ target: targetName }, report.rtoMs / 1000);
  if (report.rpoSeconds !== undefined) options.metrics?.drillRpoSeconds.set({ target: targetName }, report.rpoSeconds);
  if (report.ok) options.metrics?.drillLastSuccess.set({ target: targetName }, finishedAt.getTime() / 1000);

  if (!report.ok) {
    const failed = failedChecks(report).filter((c) => !c.skipped);
    await alerts.raise({
      alert: 'drill_failed',
      severity: 'critical',
      summary:
        `drill of backup ${report.backupId ?? '(none)'} on target ${targetName} FAILED: ${failed.map((c) => c.name).join(', ')}; ` +
        `this backup does not count as restorable; read the report (${report.stored?.markdown ?? 'seckill drill --json'}) and take a new backup`,
      details: { drillId: report.id, backupId: report.backupId ?? null, target: targetName, failedChecks: failed.map(({ name, detail }) => ({ name, detail })) },
    });
  }
  return report;
}

/** Writes the report as JSON and Markdown; a failure is recorded in the report, not thrown. */
async function storeReport(target: BackupTarget, backupId: string, report: DrillReport): Promise<DrillReport['stored']> {
  try {
    const json = await writeDrillReport(target, backupId, `${report.id}.json`, `${JSON.stringify(report, null, 2)}\n`);
    const markdown = await writeDrillReport(target, backupId, `${report.id}.md`, renderDrillMarkdown(report));
    return { json, markdown };
  } catch (err) {
    return { error: `could not write the report into the catalog of target ${target.name}: ${(err as Error).message}` };
  }
}
