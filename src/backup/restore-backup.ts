import type { Readable } from 'node:stream';
import type { SeckillConfig } from '../config/config.js';
import { isEmptyDatabase } from './database-census.js';
import { openArtifact } from './artifact-open.js';
import { ArtifactError } from './artifact-error.js';
import { readManifest } from './backup-catalog.js';
import { loadBackupKey } from './backup-key.js';
import type { BackupManifest } from './backup-manifest.js';
import { silentProgress, throttledBytes } from './backup-progress.js';
import type { ProgressListener } from './backup-progress.js';
import type { BackupTarget } from './backup-target.js';
import { databaseLocation, describeDatabase, sameDatabase } from './database-location.js';
import { formatBytes } from './byte-size.js';
import { DigestTap } from './digest-tap.js';
import { engineFor } from './engines/index.js';
import { replayLogs } from './log-replay.js';
import type { LogReplay } from './log-replay.js';
import { closeTarget, openTargets } from './targets/open-target.js';

/** What to restore, and where. */
export interface RestoreOptions {
  readonly id: string;
  /** The database URL to restore into; it must exist and be empty. */
  readonly to: string;
  /** The target to restore from; default the first configured target that holds the backup. */
  readonly target?: string;
  /** Lifts the refusals: a non-empty database, the configured live primary. */
  readonly force?: boolean;
  /** Point-in-time recovery: replay the change log up to this ISO 8601 time. */
  readonly until?: string;
}

/** The result of a restore. */
export interface RestoreResult {
  readonly ok: boolean;
  readonly id: string;
  /** Where it was restored into (credentials hidden). */
  readonly to: string;
  readonly target?: string;
  /** What the restore said it would do, before it did it. */
  readonly plan: readonly string[];
  /** True when it refused before touching anything (non-empty target, live primary). */
  readonly refused?: boolean;
  /** The row counts the restored database should hold (from the manifest). */
  readonly expectedRowCounts?: Readonly<Record<string, number>>;
  /** Raw bytes restored. */
  readonly bytes?: number;
  /** Wall time of the restore: its recovery time (RTO). */
  readonly durationMs: number;
  readonly error?: string;
}

async function findBackup(config: SeckillConfig, id: string, targetName: string | undefined): Promise<{ target: BackupTarget; manifest: BackupManifest; others: BackupTarget[] }> {
  const targets = openTargets(config.backupTargets, targetName === undefined ? undefined : [targetName]);
  const problems: string[] = [];
  for (const [index, target] of targets.entries()) {
    try {
      const manifest = await readManifest(target, id);
      return { target, manifest, others: targets.filter((_, i) => i !== index) };
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  for (const target of targets) closeTarget(target);
  throw new Error(problems.join('; ') || `there is no backup ${id}`);
}

/**
 * Restores a backup's database into an empty database. It says what it will do (the
 * plan, through `progress`, and in the result) before it does it; refuses a database that
 * is not empty and the configured live primary (`config.databaseUrl`, compared by host,
 * port and database, not by spelling) unless `force`; checks the artifact while streaming
 * it (size, SHA-256, every encrypted chunk, the raw SHA-256), so a damaged backup fails the
 * restore instead of restoring wrong data quietly; and reports how long it took (RTO).
 *
 * @example
 * const result = await restoreBackup(config, { id, to: 'postgres://…/seckill_restored' }, (e) => console.error(e.message));
 */
export async function restoreBackup(config: SeckillConfig, options: RestoreOptions, progress: ProgressListener = silentProgress): Promise<RestoreResult> {
  const started = Date.now();
  const to = describeDatabase(options.to);
  const plan: string[] = [];
  const result = (fields: Partial<RestoreResult>): RestoreResult => ({ ok: false, id: options.id, to, plan, durationMs: Date.now() - started, ...fields });
  let found: Awaited<ReturnType<typeof findBackup>> | undefined;
  try {
    databaseLocation(options.to);
    let until: Date | undefined;
    if (options.until !== undefined) {
      until = new Date(options.until);
      if (Number.isNaN(until.getTime())) throw new Error(`--until ${options.until} is not a time; use ISO 8601, e.g. 2026-11-26T05:30:00Z`);
    }
    found = await findBackup(config, options.id, options.target);
    for (const other of found.others) closeTarget(other);
    const { target, manifest } = found;
    const database = manifest.database;
    const artifact = manifest.artifacts.find((a) => a.role === 'database');
    if (database === undefined || artifact === undefined) {
      return result({ target: target.name, error: `backup ${options.id} holds no database (only file sets); pick a backup taken with --db (see \`seckill backup list\`)` });
    }
    const engine = engineFor(options.to, { mysqlMethod: database.method === 'mariabackup' ? 'physical' : 'logical' });
    if (engine.engine !== database.engine) {
      return result({ target: target.name, error: `backup ${options.id} is a ${database.engine} backup and ${to} is a ${engine.engine} database; restore it into a ${database.engine} database` });
    }
    let replay: LogReplay | undefined;
    if (until !== undefined) {
      if (until.getTime() < Date.parse(manifest.createdAt)) {
        throw new Error(`--until ${until.toISOString()} is before backup ${options.id} was taken (${manifest.createdAt}); pick an older backup`);
      }
      replay = await replayLogs({ manifest, until, config });
    }

    plan.push(
      `restore backup ${manifest.id} (${database.engine} database ${database.name}, taken ${manifest.createdAt} by ${database.tool.name} ${database.tool.version})`,
      `from target ${target.name} (${target.location}): ${artifact.name}, ${formatBytes(artifact.size)} stored, ${formatBytes(artifact.rawSize)} of dump`,
      `into ${to}, which must be empty; the artifact is checked (SHA-256, every encrypted chunk, raw SHA-256) while it streams`,
      `expected rows afterwards: ${Object.entries(database.rowCounts).map(([table, n]) => `${table} ${n}`).join(', ')}`,
      ...(replay ? [`then replay ${replay.description}`] : []),
    );
    for (const line of plan) progress({ step: 'plan', message: line });

    const primary = sameDatabase(options.to, config.databaseUrl);
    if (primary && !options.force) {
      return result({
        target: target.name,
        refused: true,
        error:
          `refusing to restore into ${to}: it is the configured live primary (databaseUrl), and a restore would overwrite the orders being sold; ` +
          'restore into another database, or, if you are rebuilding the primary with the service stopped, pass --force',
      });
    }
    let empty: boolean;
    try {
      empty = await isEmptyDatabase(options.to);
    } catch (error) {
      return result({ target: target.name, error: `cannot look into ${to}: ${(error as Error).message}; create the empty database first (CREATE DATABASE …) and check the URL` });
    }
    if (!empty && !options.force) {
      return result({
        target: target.name,
        refused: true,
        error: `refusing to restore into ${to}: it is not empty (it holds tables), and restoring would mix two states; restore into a new empty database, or pass --force to try anyway`,
      });
    }
    if (primary) progress({ step: 'plan', message: `--force: restoring into the configured live primary ${to}` });

    const key = loadBackupKey(config, { create: false });
    progress({ step: 'restore', message: `fetching ${artifact.name} from ${target.name} and restoring it (a ${engine.method} dump) with the ${engine.engine} client` });
    const stored = await target.get(`${manifest.id}/${artifact.name}`);
    const raw = openArtifact(stored, artifact, key);
    const report = throttledBytes(progress);
    const counter = new DigestTap(undefined, (bytes) =>
      report({ step: 'restore', message: `${formatBytes(bytes)} of ${formatBytes(artifact.rawSize)} restored`, bytes }),
    );
    let streamError: Error | undefined;
    raw.once('error', (error: Error) => {
      streamError = error;
      counter.destroy(error);
    });
    raw.pipe(counter);
    try {
      await engine.restore(counter as Readable, options.to);
    } catch (error) {
      throw streamError ?? error;
    }
    if (streamError !== undefined) throw streamError;
    if (counter.bytes !== artifact.rawSize) {
      throw new Error(`the restore read ${counter.bytes} of the dump's ${artifact.rawSize} bytes and stopped`);
    }
    if (replay !== undefined) await replay.apply(options.to, progress);
    const durationMs = Date.now() - started;
    progress({ step: 'restore', message: `restored backup ${manifest.id} into ${to} in ${(durationMs / 1000).toFixed(1)} s` });
    return result({ ok: true, target: target.name, expectedRowCounts: database.rowCounts, bytes: counter.bytes, durationMs });
  } catch (error) {
    const message =
      error instanceof ArtifactError
        ? `the backup failed a check during the restore: ${error.message}. ${to} may now hold a partial restore: drop and recreate it empty, then restore another backup (or the same one from another target with --target)`
        : (error as Error).message;
    return result({ ...(found ? { target: found.target.name } : {}), error: message });
  } finally {
    if (found) closeTarget(found.target);
  }
}
