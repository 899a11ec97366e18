import type { Command } from 'commander';
import { formatBytes } from '../backup/byte-size.js';
import type { ProgressEvent } from '../backup/backup-progress.js';
// Only types come from the backup modules up front: each action imports what it runs, so
// registering these commands (every `seckill` call does) loads no AWS SDK or database driver.
import type { CatalogListing } from '../backup/backup-catalog.js';
import type { PruneResult } from '../backup/prune-backups.js';
import type { RestoreResult } from '../backup/restore-backup.js';
import type { RestoreFilesResult } from '../backup/restore-files.js';
import type { BackupRunResult } from '../backup/run-backup.js';
import type { VerifyRunResult } from '../backup/verify-backup.js';
import { ConfigError } from '../config/index.js';
import { commandConfig } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';

/** Deletions listed one by one before prune's summary collapses the rest (one screen). */
const LISTED_DELETIONS = 15;

const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** Progress goes to stderr, so stdout holds only the summary (or the JSON). */
function showProgress(event: ProgressEvent): void {
  err(`[${event.step}] ${event.message}`);
}

/** Runs a command; an unexpected failure prints one line (no stack for known errors) and exits 1. */
function action<A extends unknown[]>(run: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = await run(...args);
    } catch (error) {
      err(`seckill: ${error instanceof ConfigError ? error.message : ((error as Error).stack ?? String(error))}`);
      process.exitCode = 1;
    }
  };
}

/** `--target a --target b` or `--target a,b`. */
function collectTargets(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((name) => name.trim()).filter(Boolean)];
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function rows(counts: Readonly<Record<string, number>> | undefined): string {
  return counts ? Object.entries(counts).map(([table, n]) => `${table} ${n}`).join(', ') : '-';
}

function printRun(result: BackupRunResult): void {
  const manifest = result.manifest;
  const okTargets = result.perTarget.filter((t) => t.ok).map((t) => t.target);
  if (manifest) out(`backup ${manifest.id} complete on ${okTargets.join(', ')} in ${seconds(result.durationMs)}`);
  else out(`backup ${result.id ?? ''} FAILED after ${seconds(result.durationMs)}`.replace('  ', ' '));
  if (manifest?.database) {
    const db = manifest.database;
    out(`  database  ${db.engine} ${db.name}: ${db.tool.name} ${db.tool.version}, server ${db.server.version}`);
    out(`            rows: ${rows(db.rowCounts)}; ${db.sales.length} sales${db.position ? `; log position ${JSON.stringify(db.position)}` : ''}`);
  }
  for (const a of manifest?.artifacts ?? []) {
    out(`  artifact  ${a.name.padEnd(34)} ${formatBytes(a.size).padStart(10)} stored, ${formatBytes(a.rawSize)} raw${a.fileCount !== undefined ? `, ${a.fileCount} files` : ''}, key ${a.encryption?.keyId ?? 'none'}`);
  }
  for (const t of result.perTarget) out(`  target    ${t.target.padEnd(10)} ${t.ok ? 'ok     ' : 'FAILED '} ${t.location}${t.error ? `: ${t.error}` : ''}`);
  for (const warning of result.warnings) out(`WARNING: ${warning}`);
  if (result.error) out(`error: ${result.error}`);
}

function printListing(listing: CatalogListing, drilled: ReadonlySet<string>): void {
  out(`target ${listing.target} (${listing.location}): ${listing.backups.length} complete backup(s)${listing.incomplete.length ? `, ${listing.incomplete.length} INCOMPLETE` : ''}`);
  if (listing.backups.length > 0) {
    out(`  ${'id'.padEnd(31)} ${'contents'.padEnd(15)} ${'stored'.padStart(10)}  ${'drill'.padEnd(7)} rows`);
  }
  const damaged = new Map(listing.damaged.map((d) => [d.id, d.missing]));
  for (const b of listing.backups) {
    const size = b.artifacts.reduce((sum, a) => sum + a.size, 0);
    const contents = [b.contents.database ? `db:${b.database?.engine ?? '?'}` : '', b.contents.files ? 'files' : ''].filter(Boolean).join('+');
    const missing = damaged.get(b.id);
    out(
      `  ${b.id.padEnd(31)} ${contents.padEnd(15)} ${formatBytes(size).padStart(10)}  ${(drilled.has(b.id) ? 'passed' : '-').padEnd(7)} ${rows(b.database?.rowCounts)}` +
        `${missing ? `  DAMAGED: ${missing.join(', ')} missing` : ''}`,
    );
  }
  for (const i of listing.incomplete) out(`  ${i.id.padEnd(31)} INCOMPLETE, not a backup: ${i.reason}`);
}

function printVerify(result: VerifyRunResult): void {
  for (const v of result.verdicts) {
    out(`backup ${v.id} on ${v.target}: ${v.ok ? `ok (${v.artifacts.length} artifact(s))` : 'FAILED'}`);
    if (!v.ok && v.artifacts.length === 0 && v.error) out(`  ${v.error}`);
    for (const a of v.artifacts) {
      if (!v.ok) out(`  ${a.ok ? 'ok    ' : 'BROKEN'} ${a.name}${a.error ? `: ${a.error}` : ''}`);
    }
  }
  const failed = result.verdicts.filter((v) => !v.ok).length;
  out(`${result.verdicts.length - failed} of ${result.verdicts.length} backup copies verified ok`);
  for (const warning of result.warnings) out(`warning: ${warning}`);
  if (result.error) out(`error: ${result.error}`);
}

function printPrune(result: PruneResult): void {
  const p = result.policy;
  out(
    `${result.applied ? 'prune' : 'prune DRY RUN (nothing deleted; run with --apply to delete)'} — ` +
      `policy: last ${p.keepLast}, hourly ${p.keepHourly}, daily ${p.keepDaily}, weekly ${p.keepWeekly}, monthly ${p.keepMonthly}; the newest drilled backup is always kept`,
  );
  for (const t of result.targets) {
    const kept = t.decisions.filter((d) => d.keep);
    const doomed = t.decisions.filter((d) => !d.keep);
    out(`target ${t.target} (${t.location}):`);
    for (const d of kept) out(`  keep    ${d.id}  ${d.contents.padEnd(15)} ${d.reasons.join(', ')}`);
    for (const d of doomed.slice(0, LISTED_DELETIONS)) out(`  ${result.applied ? (t.deleted.includes(d.id) ? 'deleted' : 'FAILED ') : 'delete '} ${d.id}  ${d.contents.padEnd(15)} no rule keeps it`);
    if (doomed.length > LISTED_DELETIONS) out(`  … and ${doomed.length - LISTED_DELETIONS} more to ${result.applied ? 'delete' : 'be deleted'} (--json lists all)`);
    for (const i of t.incomplete) out(`  ${i.keep ? 'keep   ' : result.applied ? (t.deleted.includes(i.id) ? 'deleted' : 'FAILED ') : 'delete '} ${i.id}  ${i.reason}`);
    out(`  ${kept.length} kept, ${doomed.length} ${result.applied ? 'deleted' : 'to delete'}, ${t.incomplete.filter((i) => !i.keep).length} incomplete ${result.applied ? 'removed' : 'to remove'}`);
  }
  if (result.error) out(`error: ${result.error}`);
}

function printRestore(result: RestoreResult): void {
  if (result.ok) {
    out(`restored backup ${result.id} from ${result.target} into ${result.to} in ${seconds(result.durationMs)} (this restore's RTO)`);
    out(`  ${formatBytes(result.bytes ?? 0)} of dump; the database should now hold: ${rows(result.expectedRowCounts)}`);
    out('  next: `seckill drill --backup <id>` proves a backup end to end; point the service at the restored database only after checking it');
  } else {
    out(`restore of backup ${result.id} into ${result.to} ${result.refused ? 'REFUSED (nothing was changed)' : 'FAILED'} after ${seconds(result.durationMs)}`);
    out(`error: ${result.error}`);
  }
}

function printRestoreFiles(result: RestoreFilesResult): void {
  for (const e of result.extracted) out(`extracted file set ${e.fileSet} (${e.files} files) into ${e.folder}`);
  out(result.ok ? `file sets of backup ${result.id} extracted in ${seconds(result.durationMs)}; copy what you need into place` : `error: ${result.error}`);
}

function emit<T>(json: boolean | undefined, result: T, print: (result: T) => void): void {
  if (json) out(JSON.stringify(result, null, 2));
  else print(result);
}

/**
 * Adds `seckill backup run | list | verify | prune` and `seckill restore` to the program.
 * Every command prints progress to stderr, a one-screen summary (or `--json`) to stdout,
 * and exits non-zero when anything failed.
 *
 * @example
 * registerBackupCommands(program, () => program.opts<GlobalOptions>());
 */
export function registerBackupCommands(program: Command, global: () => GlobalOptions): void {
  const backup = program.command('backup').description('take, list, verify and prune backups (database and file sets)');

  backup
    .command('run')
    .description('back up the database and the file sets to every target (neither --db nor --files: both)')
    .option('--db', 'back up the database')
    .option('--files', 'back up the file sets')
    .option('--target <name>', 'only this target (repeat or comma-separate for several)', collectTargets)
    .option('--json', 'print the result as JSON')
    .action(
      action(async (options: { db?: boolean; files?: boolean; target?: string[]; json?: boolean }) => {
        const config = commandConfig(global());
        const { runBackup } = await import('../backup/run-backup.js');
        const result = await runBackup(config, { db: options.db === true, files: options.files === true, targets: options.target }, showProgress);
        emit(options.json, result, printRun);
        return result.error ? 1 : 0;
      }),
    );

  backup
    .command('list')
    .description('list the backups on each target; incomplete uploads are shown as such, never as backups')
    .option('--target <name>', 'only this target', collectTargets)
    .option('--json', 'print JSON')
    .action(
      action(async (options: { target?: string[]; json?: boolean }) => {
        const config = commandConfig(global());
        const [{ listBackups, passedDrillIds }, { closeTarget, openTargets }] = await Promise.all([
          import('../backup/backup-catalog.js'),
          import('../backup/targets/open-target.js'),
        ]);
        const targets = openTargets(config.backupTargets, options.target);
        const listings: (CatalogListing & { drilled: string[] })[] = [];
        let failed = false;
        try {
          for (const target of targets) {
            try {
              const listing = await listBackups(target);
              listings.push({ ...listing, drilled: [...(await passedDrillIds(target))] });
            } catch (error) {
              failed = true;
              err(`seckill: ${(error as Error).message}`);
            }
          }
        } finally {
          for (const target of targets) closeTarget(target);
        }
        if (options.json) out(JSON.stringify(listings, null, 2));
        else for (const listing of listings) printListing(listing, new Set(listing.drilled));
        return failed ? 1 : 0;
      }),
    );

  backup
    .command('verify')
    .description('fetch every artifact and check size, SHA-256, decryption and decompression; names the broken file and why')
    .argument('[ids...]', 'backup ids')
    .option('--all', 'every complete backup on every target')
    .option('--target <name>', 'only this target', collectTargets)
    .option('--json', 'print JSON')
    .action(
      action(async (ids: string[], options: { all?: boolean; target?: string[]; json?: boolean }) => {
        if (!options.all && ids.length === 0) {
          err('seckill: name a backup id to verify, or pass --all (ids: `seckill backup list`)');
          return 2;
        }
        const config = commandConfig(global());
        const { verifyBackups } = await import('../backup/verify-backup.js');
        const result = await verifyBackups(config, { ids, all: options.all, targets: options.target }, showProgress);
        emit(options.json, result, printVerify);
        return result.error ? 1 : 0;
      }),
    );

  backup
    .command('prune')
    .description('apply the retention policy (keepLast/Hourly/Daily/Weekly/Monthly, as restic forget); a dry run unless --apply')
    .option('--apply', 'delete what the policy does not keep')
    .option('--target <name>', 'only this target', collectTargets)
    .option('--json', 'print JSON')
    .action(
      action(async (options: { apply?: boolean; target?: string[]; json?: boolean }) => {
        const config = commandConfig(global());
        const { pruneBackups } = await import('../backup/prune-backups.js');
        const result = await pruneBackups(config, { apply: options.apply === true, targets: options.target }, showProgress);
        emit(options.json, result, printPrune);
        return result.error ? 1 : 0;
      }),
    );

  program
    .command('restore')
    .description('restore a backup\'s database into an empty database (and/or extract its file sets); says what it will do first')
    .argument('<id>', 'backup id (see `seckill backup list`)')
    .option('--to <url>', 'database URL to restore into; it must exist and be empty')
    .option('--files-to <folder>', 'extract the file sets into <folder>/<file set>/ (never over live files)')
    .option('--target <name>', 'restore from this target (default: the first that holds the backup)')
    .option('--until <iso>', 'point-in-time recovery: replay the change log up to this time')
    .option('--force', 'restore even into a non-empty database or the configured live primary')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (id: string, options: { to?: string; filesTo?: string; target?: string; until?: string; force?: boolean; json?: boolean }) => {
        if (options.to === undefined && options.filesTo === undefined) {
          err('seckill: say where to restore: --to <database-url> and/or --files-to <folder>');
          return 2;
        }
        const config = commandConfig(global());
        const results: { database?: RestoreResult; files?: RestoreFilesResult } = {};
        if (options.to !== undefined) {
          const { restoreBackup } = await import('../backup/restore-backup.js');
          results.database = await restoreBackup(config, { id, to: options.to, target: options.target, force: options.force, until: options.until }, showProgress);
        }
        if (options.filesTo !== undefined && (results.database === undefined || results.database.ok)) {
          const { restoreFiles } = await import('../backup/restore-files.js');
          results.files = await restoreFiles(config, { id, to: options.filesTo, target: options.target }, showProgress);
        }
        if (options.json) out(JSON.stringify(results.database && !results.files ? results.database : results, null, 2));
        else {
          if (results.database) printRestore(results.database);
          if (results.files) printRestoreFiles(results.files);
        }
        return (results.database && !results.database.ok) || (results.files && !results.files.ok) ? 1 : 0;
      }),
    );
}
