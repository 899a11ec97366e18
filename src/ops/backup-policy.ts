import type { BackupManifest } from '../backup/backup-manifest.js';
import type { Alert } from './alert-sink.js';

/** The limits from configuration that the backups of a target are held to. */
export interface BackupPolicySettings {
  readonly backupMaxAgeMinutes: number;
  readonly drillMaxAgeHours: number;
  readonly backupShrinkAlertRatio: number;
}

/** A drill as the policy needs it: which backup, when it ended, whether every check passed. */
export interface DrillOutcome {
  readonly backupId: string;
  /** ISO 8601. */
  readonly finishedAt: string;
  readonly ok: boolean;
}

/** What one target holds, read from its catalog. */
export interface TargetState {
  readonly target: string;
  /** Complete backups (those with a manifest), any order. */
  readonly backups: readonly BackupManifest[];
  readonly drills: readonly DrillOutcome[];
}

/** One breached rule, with the key under which repeats of it are recognised. */
export interface PolicyBreach extends Alert {
  /** `<alert>:<target>`: the same condition found again is the same breach. */
  readonly key: string;
}

/** What the policy measured on a target, for the metrics, whether or not it is breached. */
export interface TargetMeasures {
  readonly target: string;
  /** Age of the newest complete database backup; undefined when there is none. */
  readonly backupAgeSeconds?: number;
  /** The newest drill's verdict; undefined when there has been none. */
  readonly lastDrillOk?: boolean;
  /** When a drill last passed (ms); undefined when none has. */
  readonly lastDrillPassedAt?: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function databaseDumpSize(manifest: BackupManifest): number | undefined {
  return manifest.artifacts.find((a) => a.role === 'database')?.rawSize;
}

function age(ms: number): string {
  if (ms < 2 * HOUR) return `${Math.round(ms / MINUTE)} min`;
  if (ms < 72 * HOUR) return `${(ms / HOUR).toFixed(1)} h`;
  return `${(ms / (24 * HOUR)).toFixed(1)} days`;
}

/**
 * Holds one target's backups to the policy and returns every rule it breaches (none when
 * all is well): no database backup within `backupMaxAgeMinutes`; the newest database dump
 * smaller than `backupShrinkAlertRatio` × the one before it (the classic silent failure: a
 * dump that "succeeds" nearly empty); no drill passed within `drillMaxAgeHours` (I6: an
 * undrilled backup does not count). Pure, so each rule can be tested on a synthetic calendar.
 *
 * @example
 * const breaches = checkBackupPolicy(await readTargetState(target), config, Date.now());
 */
export function checkBackupPolicy(state: TargetState, settings: BackupPolicySettings, now: number): { breaches: PolicyBreach[]; measures: TargetMeasures } {
  const breaches: PolicyBreach[] = [];
  const { target } = state;
  const newestFirst = state.backups
    .filter((b) => b.contents.database && b.database !== undefined)
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const newest = newestFirst[0];

  const maxAgeMs = settings.backupMaxAgeMinutes * MINUTE;
  const backupAgeMs = newest ? now - Date.parse(newest.createdAt) : undefined;
  if (backupAgeMs === undefined || backupAgeMs > maxAgeMs) {
    breaches.push({
      key: `backup_stale:${target}`,
      alert: 'backup_stale',
      severity: 'critical',
      summary: newest
        ? `the newest database backup on target ${target} (${newest.id}) is ${age(backupAgeMs!)} old, over the ${settings.backupMaxAgeMinutes} min policy; ` +
          'check the ops role is running and the backup job\'s log, then run `seckill backup run`'
        : `target ${target} holds no complete database backup; run \`seckill backup run\` and check the ops role's backupSchedule`,
      details: { target, newestBackupId: newest?.id ?? null, newestCreatedAt: newest?.createdAt ?? null, maxAgeMinutes: settings.backupMaxAgeMinutes },
    });
  }

  // Compared within one engine and method: a switch from logical to physical dumps is not a shrink.
  const previous = newest && newestFirst.slice(1).find((b) => b.database!.engine === newest.database!.engine && b.database!.method === newest.database!.method);
  const newestSize = newest && databaseDumpSize(newest);
  const previousSize = previous && databaseDumpSize(previous);
  if (newest && previous && newestSize !== undefined && previousSize !== undefined && previousSize > 0 && newestSize < settings.backupShrinkAlertRatio * previousSize) {
    breaches.push({
      key: `backup_shrunk:${target}`,
      alert: 'backup_shrunk',
      severity: 'critical',
      summary:
        `the database dump of backup ${newest.id} on target ${target} is ${newestSize} bytes, ${((newestSize / previousSize) * 100).toFixed(1)}% of the previous backup ${previous.id} ` +
        `(${previousSize} bytes; alert below ${(settings.backupShrinkAlertRatio * 100).toFixed(0)}%); compare their row counts with \`seckill backup list --json\` and run \`seckill drill --backup ${newest.id}\``,
      details: {
        target,
        backupId: newest.id,
        bytes: newestSize,
        previousBackupId: previous.id,
        previousBytes: previousSize,
        ratio: newestSize / previousSize,
        rowCounts: newest.database!.rowCounts,
        previousRowCounts: previous.database!.rowCounts,
      },
    });
  }

  const drillsNewestFirst = [...state.drills].sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt));
  const lastPassed = drillsNewestFirst.find((d) => d.ok);
  const lastPassedAt = lastPassed ? Date.parse(lastPassed.finishedAt) : undefined;
  if (lastPassedAt === undefined || now - lastPassedAt > settings.drillMaxAgeHours * HOUR) {
    breaches.push({
      key: `drill_overdue:${target}`,
      alert: 'drill_overdue',
      severity: 'critical',
      summary: lastPassed
        ? `no drill has passed on target ${target} for ${age(now - lastPassedAt!)} (policy: ${settings.drillMaxAgeHours} h); until one does, no backup there is known to restore; run \`seckill drill --target ${target}\``
        : `no drill has ever passed on target ${target}, so no backup there is known to restore; run \`seckill drill --target ${target}\``,
      details: {
        target,
        lastPassedBackupId: lastPassed?.backupId ?? null,
        lastPassedAt: lastPassed?.finishedAt ?? null,
        lastDrillOk: drillsNewestFirst[0]?.ok ?? null,
        drillMaxAgeHours: settings.drillMaxAgeHours,
      },
    });
  }

  return {
    breaches,
    measures: {
      target,
      ...(backupAgeMs !== undefined ? { backupAgeSeconds: backupAgeMs / 1000 } : {}),
      ...(drillsNewestFirst[0] ? { lastDrillOk: drillsNewestFirst[0].ok } : {}),
      ...(lastPassedAt !== undefined ? { lastDrillPassedAt: lastPassedAt } : {}),
    },
  };
}
