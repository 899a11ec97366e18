import type { EngineName } from '../backup/backup-manifest.js';

/** One thing a drill checked, and what it found. */
export interface DrillCheck {
  /** Stable name: `checksums`, `restore`, `row-counts`, `engine-integrity`, `invariant: …`, `sale-snapshot`, `smoke-test`. */
  readonly name: string;
  readonly ok: boolean;
  /** What was found, in words an operator can act on. */
  readonly detail: string;
  /** True when the check could not run because an earlier step failed (then `ok` is false). */
  readonly skipped?: boolean;
  readonly durationMs?: number;
}

/**
 * The result of one drill: restoring a backup into a scratch target and checking it
 * (invariant I6: a backup counts only once this says `ok`). Written as JSON and Markdown
 * into the catalog of the target the backup was restored from.
 */
export interface DrillReport {
  readonly formatVersion: 1;
  /** Sortable: `<startedAt with - for :>-<4 hex>`. */
  readonly id: string;
  /** True only when every check passed. */
  readonly ok: boolean;
  /** Undefined when no backup could be picked. */
  readonly backupId?: string;
  /** Name of the target the backup came from. */
  readonly target: string;
  readonly engine?: EngineName;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** When the restored backup's snapshot was taken: the recovery point it proves. */
  readonly backupCreatedAt?: string;
  /** Restore plus checks, in milliseconds: the recovery time this drill measured. */
  readonly rtoMs: number;
  /** The restore alone, in milliseconds. */
  readonly restoreMs?: number;
  /** Seconds from the restored recovery point to the end of the drill: the data a recovery now would lose. */
  readonly rpoSeconds?: number;
  /** Where it was restored (no credentials), and whether it was thrown away afterwards. */
  readonly scratch?: { readonly location: string; readonly dropped: boolean; readonly dropError?: string };
  readonly checks: readonly DrillCheck[];
  /** A failure that stopped the drill before its checks (no backup, no scratch database). */
  readonly error?: string;
  /** Catalog keys the report was written under; absent when writing it failed. */
  readonly stored?: { readonly json?: string; readonly markdown?: string; readonly error?: string };
}

/** The checks that failed, in order. */
export function failedChecks(report: DrillReport): DrillCheck[] {
  return report.checks.filter((c) => !c.ok);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The report as Markdown, for people reading the catalog. */
export function renderDrillMarkdown(report: DrillReport): string {
  const lines = [
    `# Drill ${report.id}: ${report.ok ? 'PASSED' : 'FAILED'}`,
    '',
    `- backup: ${report.backupId ?? '(none)'} on target ${report.target}${report.engine ? ` (${report.engine})` : ''}`,
    `- recovery point: ${report.backupCreatedAt ?? 'n/a'}${report.rpoSeconds !== undefined ? ` (RPO ${Math.round(report.rpoSeconds)} s)` : ''}`,
    `- RTO (restore + checks): ${(report.rtoMs / 1000).toFixed(1)} s${report.restoreMs !== undefined ? `, restore alone ${(report.restoreMs / 1000).toFixed(1)} s` : ''}`,
    `- ran: ${report.startedAt} – ${report.finishedAt}`,
  ];
  if (report.scratch) {
    lines.push(`- scratch: ${report.scratch.location}, ${report.scratch.dropped ? 'dropped' : `NOT dropped (${report.scratch.dropError ?? 'unknown'}): drop it by hand`}`);
  }
  if (report.error) lines.push('', `**Stopped:** ${report.error}`);
  lines.push('', '| check | result | detail |', '|---|---|---|');
  for (const check of report.checks) {
    lines.push(`| ${escapeCell(check.name)} | ${check.ok ? 'ok' : check.skipped ? 'not run' : '**FAILED**'} | ${escapeCell(check.detail)} |`);
  }
  return `${lines.join('\n')}\n`;
}
