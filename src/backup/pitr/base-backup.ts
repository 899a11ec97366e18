import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import pg from 'pg';
import type { BackupTarget } from '../backup-target.js';
import type { LogPosition } from '../backup-manifest.js';
import { getJson, putJson, uploadStream } from './archive-transfer.js';
import { describeAddress, parseDatabaseAddress, postgresConnectionArgs, postgresPasswordEnv } from './database-address.js';
import { postgresProgram } from './postgres-tools.js';
import { TarEntryPicker } from './tar-entry-picker.js';
import { RunningTool } from './tool-process.js';

/**
 * Physical base backups of a PostgreSQL cluster, the starting point of WAL point-in-time
 * recovery (a logical `pg_dump` cannot have WAL replayed onto it). Layout on a target:
 *
 * ```
 * pitr/base/<system id>/<id>/base.tar.gz        pg_basebackup -Ft of the data directory
 * pitr/base/<system id>/<id>/base-backup.json   this record, written last: without it the backup does not exist
 * ```
 */

/** Where base backups live on a target. */
export const BASE_BACKUP_ROOT = 'pitr/base';
const RECORD_FILE = 'base-backup.json';
const ARCHIVE_FILE = 'base.tar.gz';

/** What is known of one base backup. */
export interface BaseBackup {
  readonly formatVersion: 1;
  /** Its folder on the target: pass it to `restoreToTime` as `baseBackupKey`. */
  readonly key: string;
  readonly id: string;
  /** The cluster's system identifier: its WAL archive is `pitr/wal/<system id>/`. */
  readonly systemIdentifier: string;
  /** `server_version` of the source, e.g. `15.8`; a restore needs the same major version. */
  readonly serverVersion: string;
  readonly serverMajor: number;
  readonly timeline: number;
  /** WAL from here on is needed to restore it. */
  readonly startLsn: string;
  readonly startWalFile: string;
  /** Recovery must replay at least to here before the copy is consistent. */
  readonly endLsn: string;
  readonly segmentSize: number;
  readonly startedAt: string;
  /** The copy is consistent from (at the latest) this instant: the earliest `until` it can restore to. */
  readonly completedAt: string;
  readonly archive: { readonly key: string; readonly storedBytes: number; readonly rawBytes: number; readonly sha256: string };
  /**
   * Settings a server replaying this cluster's WAL may not set lower than the source
   * (`max_connections`, `max_prepared_transactions`…). They often come from a command
   * line or /etc rather than the data directory, so the backup records them.
   */
  readonly replaySettings: Readonly<Record<string, string>>;
}

/** The settings PostgreSQL requires at least as high on a server replaying the WAL as on its source. */
const REPLAY_SETTINGS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction'];

/** Options of {@link takeBaseBackup}. */
export interface BaseBackupOptions {
  /** A superuser (or a role with REPLICATION and pg_monitor): `postgres://postgres:secret@db1:5432/postgres`. */
  readonly databaseUrl: string;
  readonly target: BackupTarget;
  /** Folder of the PostgreSQL programs; default the newest in /usr/lib/postgresql/<major>/bin. */
  readonly binDir?: string;
}

/** The manifest position of a base backup: where its WAL replay starts. */
export function baseBackupPosition(backup: BaseBackup): LogPosition {
  return { kind: 'wal', lsn: backup.startLsn, timeline: backup.timeline };
}

function backupId(now: Date): string {
  return `${now.toISOString().replace(/[:.]/g, '-')}-${randomBytes(2).toString('hex')}`;
}

function labelField(label: string, field: string): string {
  const match = new RegExp(`^${field}: (.+)$`, 'm').exec(label);
  if (match === null) throw new Error(`backup_label has no ${field} line; pg_basebackup wrote an unexpected label:\n${label}`);
  return (match[1] as string).trim();
}

/**
 * Takes a physical base backup with `pg_basebackup -D - -Ft -X none --checkpoint=fast`,
 * streamed (gzipped) to the target, and records its WAL start and end. `-X none`: the WAL
 * comes from the WAL archive, so the archiver must run while this runs.
 *
 * @example
 * const backup = await takeBaseBackup({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres', target });
 * // later: restoreToTime({ target, baseBackupKey: backup.key, until, dataDir, port })
 */
export async function takeBaseBackup(options: BaseBackupOptions): Promise<BaseBackup> {
  const address = parseDatabaseAddress(options.databaseUrl);
  if (address.engine !== 'postgres') throw new Error('takeBaseBackup copies PostgreSQL clusters; give it a postgres:// URL');
  const client = new pg.Client({ connectionString: options.databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  let facts: { system: string; version: string; versionNum: number; segmentSize: number; replaySettings: Record<string, string> };
  try {
    const { rows } = await client.query<{ system: string; version: string; version_num: string; segment_size: string }>(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system, current_setting('server_version') AS version,
              current_setting('server_version_num') AS version_num, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment_size`,
    );
    const row = rows[0];
    if (row === undefined) throw new Error('the server returned no version row');
    const settings = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [REPLAY_SETTINGS]);
    facts = {
      system: row.system,
      version: row.version,
      versionNum: Number(row.version_num),
      segmentSize: Number(row.segment_size),
      replaySettings: Object.fromEntries(settings.rows.map(({ name, setting }) => [name, setting])),
    };
  } finally {
    await client.end();
  }
  const startedAt = new Date();
  const id = backupId(startedAt);
  const key = `${BASE_BACKUP_ROOT}/${facts.system}/${id}`;
  const tool = new RunningTool(
    {
      command: postgresProgram('pg_basebackup', undefined, options.binDir),
      args: [...postgresConnectionArgs(address), '--pgdata=-', '--format=tar', '--wal-method=none', '--checkpoint=fast', `--label=seckill ${id}`],
      env: postgresPasswordEnv(address),
    },
    ['ignore', 'pipe', 'pipe'],
  );
  const picker = new TarEntryPicker(['backup_label', 'backup_manifest'], 256 * 1024);
  // The archive must not end as if whole when the tool died half-way: the stream only ends once it exited cleanly.
  const exitCheck = new Transform({
    transform: (chunk: Buffer, _encoding, callback) => callback(null, chunk),
    flush: (callback) => {
      tool.succeeded(`copying ${describeAddress(address)} with pg_basebackup`).then(() => callback(), callback);
    },
  });
  const archiveKey = `${key}/${ARCHIVE_FILE}`;
  if (tool.child.stdout === null) throw new Error('pg_basebackup started without a stdout pipe');
  const stored = await uploadStream(options.target, archiveKey, tool.child.stdout, picker, exitCheck);
  const completedAt = new Date();
  const label = picker.picked.get('backup_label')?.toString('utf8');
  if (label === undefined) throw new Error('the pg_basebackup archive had no backup_label; it is not a base backup');
  const startLocation = /^([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{24})\)$/i.exec(labelField(label, 'START WAL LOCATION'));
  if (startLocation === null) throw new Error(`backup_label has an unreadable START WAL LOCATION:\n${label}`);
  const walRange = /"Timeline":\s*(\d+),\s*"Start-LSN":\s*"([0-9A-F/]+)",\s*"End-LSN":\s*"([0-9A-F/]+)"/i.exec(picker.picked.get('backup_manifest')?.toString('utf8') ?? '');
  const backup: BaseBackup = {
    formatVersion: 1,
    key,
    id,
    systemIdentifier: facts.system,
    serverVersion: facts.version,
    serverMajor: Math.floor(facts.versionNum / 10_000),
    timeline: Number(labelField(label, 'START TIMELINE')),
    startLsn: startLocation[1] as string,
    startWalFile: startLocation[2] as string,
    // Without a manifest (an old server) the end is unknown; recovery then finds it itself.
    endLsn: walRange?.[3] ?? (startLocation[1] as string),
    segmentSize: facts.segmentSize,
    startedAt: startedAt.toISOString(),
    completedAt: completedAt.toISOString(),
    archive: { key: archiveKey, storedBytes: stored.storedBytes, rawBytes: stored.rawBytes, sha256: stored.sha256 },
    replaySettings: facts.replaySettings,
  };
  await putJson(options.target, `${key}/${RECORD_FILE}`, backup);
  return backup;
}

/**
 * Reads a base backup's record.
 *
 * @throws Error when there is none under `key` (never completed, or not a base backup).
 */
export async function readBaseBackup(target: BackupTarget, key: string): Promise<BaseBackup> {
  const record = await getJson<BaseBackup>(target, `${key.replace(/\/+$/, '')}/${RECORD_FILE}`);
  if (record === undefined) {
    throw new Error(`there is no complete base backup at ${key} on backup target ${target.name}; list them with listBaseBackups (an upload that never finished has no ${RECORD_FILE})`);
  }
  return record;
}

/** Every complete base backup on a target, oldest first. */
export async function listBaseBackups(target: BackupTarget): Promise<BaseBackup[]> {
  const keys = (await target.list(`${BASE_BACKUP_ROOT}/`)).filter((key) => key.endsWith(`/${RECORD_FILE}`));
  const backups = await Promise.all(keys.map((key) => readBaseBackup(target, key.slice(0, -RECORD_FILE.length - 1))));
  return backups.sort((a, b) => a.completedAt.localeCompare(b.completedAt));
}

/**
 * The newest base backup that can be restored to `until` (completed before it), or
 * undefined when there is none.
 */
export async function baseBackupFor(target: BackupTarget, until: Date, systemIdentifier?: string): Promise<BaseBackup | undefined> {
  return (await listBaseBackups(target))
    .filter((backup) => systemIdentifier === undefined || backup.systemIdentifier === systemIdentifier)
    .filter((backup) => new Date(backup.completedAt) <= until)
    .at(-1);
}
