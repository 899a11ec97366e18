import { chown, mkdir, open, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import type { BackupTarget } from '../backup-target.js';
import { downloadLogFile } from './archive-transfer.js';
import { readBaseBackup, type BaseBackup } from './base-backup.js';
import { osUserIds, POSTGRES_OS_USER, postgresProgram } from './postgres-tools.js';
import { isRoot, requireTool, RunningTool } from './tool-process.js';
import { readWalArchiveState, walArchivePrefix } from './wal-archive.js';
import { TIMELINE_HISTORY_NAME, WAL_SEGMENT_NAME, walSegmentParts } from './wal-position.js';

/** Options of {@link restoreToTime}. */
export interface PointInTimeRestoreOptions {
  readonly target: BackupTarget;
  /** The base backup's folder (`BaseBackup.key`); it must have completed before `until`. */
  readonly baseBackupKey: string;
  /** Recover every transaction committed at or before this instant, and none after. */
  readonly until: Date;
  /** A new, empty (or missing) folder that becomes the restored cluster's data directory; the caller removes it after `stop()`. */
  readonly dataDir: string;
  /** Loopback port for the scratch server. */
  readonly port: number;
  /** Role and password to connect as afterwards (the source's pg_hba.conf and roles apply). Default `postgres`, none. */
  readonly user?: string;
  readonly password?: string;
  /** Replay what the archive holds even when it is not known to be current up to `until`. */
  readonly allowIncompleteArchive?: boolean;
  /** Check the unpacked files against the backup's manifest with `pg_verifybackup` first. Default true. */
  readonly verify?: boolean;
  /** How long recovery may take. Default 10 minutes. */
  readonly timeoutMs?: number;
  /** Folder of the PostgreSQL programs; default /usr/lib/postgresql/<the backup's major>/bin. */
  readonly binDir?: string;
}

/** A scratch PostgreSQL server holding the cluster as it was at `until`. */
export interface RestoredServer {
  /** `postgres://<user>@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** The URL of another database on it. */
  urlFor(database: string): string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  readonly baseBackup: BaseBackup;
  /** Commit time of the last transaction replayed, as the server logged it. */
  readonly lastTransactionAt?: Date;
  /** True when recovery stopped at the first commit after `until`; false when the archive held none, so everything in it was replayed. */
  readonly stoppedAtTarget: boolean;
  /** WAL files fetched from the archive. */
  readonly walFiles: number;
  readonly durationMs: number;
  /** Stops the server (fast shutdown) and removes its WAL spool and log; `dataDir` is left to the caller. */
  stop(): Promise<void>;
}

const TARGET_NOT_REACHED = /recovery ended before configured recovery target was reached/;
const DEFAULT_TIMEOUT_MS = 10 * 60_000;

function logTail(text: string, lines = 30): string {
  // Our own readiness probes fill the log with these; they hide the line that matters.
  const probes = /FATAL: {2}the database system is (starting up|not yet accepting connections)|DETAIL: {2}Consistent recovery state has not been yet reached/;
  return text.trimEnd().split('\n').filter((line) => !probes.test(line)).slice(-lines).join('\n');
}

/** "2026-11-26 05:20:01.123456+00" (log_timezone UTC) → Date. */
function parseLogTime(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d{1,3})?\d*\+00$/.exec(text.trim());
  return match === null ? undefined : new Date(`${match[1] as string}T${match[2] as string}${match[3] ?? ''}Z`);
}

/** Quotes a value for the shell that runs restore_command. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The archived WAL a restore of `backup` can use, and where the archive has a hole, if it has one. */
interface WalForBackup {
  /** File name in the spool → key on the target. */
  readonly files: Map<string, string>;
  /** The first segment missing after the backup's start; recovery cannot pass it. */
  readonly gapAt?: string;
}

/**
 * History files, and the segments from the backup's start on; a complete segment wins over
 * its partial copy. Past a hole in the start timeline nothing is taken: recovery would
 * stop there anyway, and must not mistake the hole for the end of the archive.
 */
async function walFilesFor(target: BackupTarget, backup: BaseBackup): Promise<WalForBackup> {
  const prefix = `${walArchivePrefix(backup.systemIdentifier)}/`;
  const start = walSegmentParts(backup.startWalFile, backup.segmentSize);
  const files = new Map<string, string>();
  const keys = await target.list(prefix);
  for (const key of keys) {
    const name = key.slice(prefix.length).replace(/\.gz$/, '');
    if (TIMELINE_HISTORY_NAME.test(name)) files.set(name, key);
  }
  // Partial copies first, so that a complete segment of the same name replaces its entry.
  for (const partial of [true, false]) {
    for (const key of keys) {
      const name = key.slice(prefix.length).replace(/\.gz$/, '');
      const segment = name.replace(/\.partial$/, '');
      if (!WAL_SEGMENT_NAME.test(segment) || name.endsWith('.partial') !== partial) continue;
      const parts = walSegmentParts(segment, backup.segmentSize);
      if (parts.timeline >= start.timeline && parts.segmentNumber >= start.segmentNumber) files.set(segment, key);
    }
  }
  if (!files.has(backup.startWalFile)) {
    throw new Error(
      `WAL segment ${backup.startWalFile}, where base backup ${backup.id} starts, is not in the WAL archive ${prefix} on ${target.name}: ` +
        'the WAL archiver was not running when the backup was taken; this base backup cannot be restored; take a new one while the archiver runs',
    );
  }
  const onStartTimeline = [...files.keys()]
    .filter((name) => WAL_SEGMENT_NAME.test(name) && walSegmentParts(name, backup.segmentSize).timeline === start.timeline)
    .sort();
  for (const [i, name] of onStartTimeline.entries()) {
    const expected = start.segmentNumber + BigInt(i);
    if (walSegmentParts(name, backup.segmentSize).segmentNumber !== expected) {
      for (const beyond of onStartTimeline.slice(i)) files.delete(beyond);
      return { files, gapAt: onStartTimeline[i - 1] ?? backup.startWalFile };
    }
  }
  return { files };
}

/**
 * Restores a PostgreSQL cluster as it was at `until`: unpacks the base backup into a
 * fresh data directory, fills a local spool with the archived WAL, and starts a scratch
 * server (as the `postgres` user when we are root) with `restore_command` copying from
 * that spool, `recovery_target_time = until` and `recovery_target_action = promote`.
 * Resolves once recovery has finished and the server accepts writes; the caller then
 * `pg_dump`s from it or uses it, and calls `stop()`.
 *
 * When the archive holds no commit after `until` (nothing happened since), PostgreSQL
 * refuses the target as unreached; if the archive is known to be current up to `until`,
 * the scratch server is then started again to replay all of it, which is the same state.
 *
 * @throws Error when `until` is before the base backup completed, the archive is not
 *   known to be current up to `until` (unless `allowIncompleteArchive`), WAL is missing,
 *   or the server fails (its log is quoted). Nothing is left running, and `dataDir` is removed.
 *
 * @example
 * const restored = await restoreToTime({ target, baseBackupKey: backup.key, until, dataDir: '/srv/pitr/data', port: 55432 });
 * try { … pg_dump restored.urlFor('seckill') … } finally { await restored.stop(); }
 */
export async function restoreToTime(options: PointInTimeRestoreOptions): Promise<RestoredServer> {
  const started = Date.now();
  const { target, until } = options;
  const backup = await readBaseBackup(target, options.baseBackupKey);
  if (Number.isNaN(until.getTime())) throw new Error('until is not a valid date');
  if (until < new Date(backup.completedAt)) {
    throw new Error(
      `--until ${until.toISOString()} is before base backup ${backup.id} was consistent (${backup.completedAt}); ` +
        'WAL can only roll a base backup forward; use an older base backup',
    );
  }
  const state = await readWalArchiveState(target, backup.systemIdentifier);
  const archivedThrough = state?.syncedAt === undefined ? undefined : new Date(state.syncedAt);
  const covered = archivedThrough !== undefined && archivedThrough >= until;
  if (!covered && options.allowIncompleteArchive !== true) {
    throw new Error(
      `the WAL archive of cluster ${backup.systemIdentifier} is known to be complete only up to ${archivedThrough?.toISOString() ?? 'no time at all'}, ` +
        `before --until ${until.toISOString()}: the archiver lagged, stopped, or the primary is gone; ` +
        'check the archiver (its status shows lag and the last failure), pick an earlier --until, or allow an incomplete archive to replay what it holds',
    );
  }
  const wal = await walFilesFor(target, backup);
  const postgres = postgresProgram('postgres', backup.serverMajor, options.binDir);
  const runAsUser = isRoot() ? POSTGRES_OS_USER : undefined;
  const owner = runAsUser === undefined ? undefined : await osUserIds(runAsUser);
  const dataDir = options.dataDir;
  // Spool, socket and log live beside the data directory, not in it: a later base backup of the scratch server must not carry them.
  const workDir = join(dirname(dataDir), `${basename(dataDir)}.pitr`);
  const existing = await readdir(dataDir).catch(() => []);
  if (existing.length > 0) throw new Error(`${dataDir} is not empty; restoreToTime unpacks a base backup only into a new or empty folder`);
  let server: RunningTool | undefined;
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await mkdir(join(workDir, 'wal'), { recursive: true, mode: 0o700 });
    if (owner !== undefined) {
      for (const dir of [dataDir, workDir, join(workDir, 'wal')]) await chown(dir, owner.uid, owner.gid);
    }
    const tar = new RunningTool({ command: requireTool('tar', 'tar'), args: ['--extract', '--file=-', `--directory=${dataDir}`], runAsUser }, ['pipe', 'ignore', 'pipe']);
    if (tar.child.stdin === null) throw new Error('tar started without a stdin pipe');
    await Promise.all([
      pipeline(await target.get(backup.archive.key), createGunzip(), tar.child.stdin),
      tar.succeeded(`unpacking base backup ${backup.id} into ${dataDir} (as ${runAsUser ?? 'this user'}: every parent folder must be searchable by it)`),
    ]);
    if (options.verify !== false) {
      await new RunningTool({ command: postgresProgram('pg_verifybackup', backup.serverMajor, options.binDir), args: ['--no-parse-wal', '--quiet', dataDir], runAsUser }, ['ignore', 'ignore', 'pipe']).succeeded(
        `verifying base backup ${backup.id} against its manifest: a file differs, so the copy on ${target.name} is damaged`,
      );
    }
    // The manifest describes the backup, not the server this becomes.
    await unlink(join(dataDir, 'backup_manifest')).catch(() => undefined);
    for (const [name, key] of wal.files) await downloadLogFile(target, key, join(workDir, 'wal', name));
    // Debian keeps postgresql.conf and pg_hba.conf in /etc, so a base backup may lack them.
    await writeIfMissing(join(dataDir, 'postgresql.conf'), '# written by seckill restoreToTime: the base backup had none\n', owner);
    await writeIfMissing(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n', owner);
    await writeIfMissing(join(dataDir, 'recovery.signal'), '', owner);

    const logPath = join(workDir, 'server.log');
    const settings: Record<string, string> = {
      ...backup.replaySettings,
      // No connections during recovery: then a source whose limits were raised after the
      // backup cannot abort recovery for "insufficient parameter settings".
      hot_standby: 'off',
      port: String(options.port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: workDir,
      // The scratch server must never feed the real archive, nor follow the real primary.
      archive_mode: 'off',
      primary_conninfo: '',
      primary_slot_name: '',
      synchronous_standby_names: '',
      cluster_name: 'seckill-pitr',
      log_timezone: 'UTC',
      logging_collector: 'off',
      restore_command: `cp ${shellQuote(join(workDir, 'wal'))}/%f %p 2>/dev/null`,
      // Not ISO's 'Z': the setting refuses time zone abbreviations.
      recovery_target_time: `${until.toISOString().replace('T', ' ').replace('Z', '')}+00`,
      recovery_target_action: 'promote',
    };
    const startServer = async (recoverySettings: Record<string, string>): Promise<RunningTool> => {
      const log = await open(logPath, 'a');
      try {
        const args = Object.entries(recoverySettings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
        return new RunningTool({ command: postgres, args: ['-D', dataDir, ...args], runAsUser }, ['ignore', log.fd, log.fd], 'SIGINT');
      } finally {
        await log.close();
      }
    };
    const user = options.user ?? 'postgres';
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    server = await startServer(settings);
    let stoppedAtTarget = true;
    for (;;) {
      const outcome = await waitForPromotion(server, { port: options.port, user, password: options.password, deadline });
      if (outcome === 'promoted') break;
      const log = await readFile(logPath, 'utf8').catch(() => '');
      if (TARGET_NOT_REACHED.test(log) && wal.gapAt !== undefined) {
        throw new Error(
          `the WAL archive of cluster ${backup.systemIdentifier} has a hole after segment ${wal.gapAt}, before --until ${until.toISOString()}: ` +
            'recovery cannot pass it; restore to a time before the hole, or from a base backup taken after it',
        );
      }
      if (TARGET_NOT_REACHED.test(log) && stoppedAtTarget && (covered || options.allowIncompleteArchive === true)) {
        // No commit after `until` is archived: replaying everything archived reaches the same state.
        stoppedAtTarget = false;
        const { recovery_target_time: _time, ...withoutTarget } = settings;
        server = await startServer(withoutTarget);
        continue;
      }
      throw new Error(
        outcome === 'timeout'
          ? `recovery of base backup ${backup.id} to ${until.toISOString()} did not finish within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms; the server log ends:\n${logTail(log)}`
          : `the scratch PostgreSQL restoring base backup ${backup.id} to ${until.toISOString()} stopped; its log ends:\n${logTail(log)}`,
      );
    }
    const log = await readFile(logPath, 'utf8').catch(() => '');
    // The last such line: after a restart without target the log holds two recoveries.
    const lastTransactionAt = parseLogTime([...log.matchAll(/last completed transaction was at log time (.+)$/gm)].at(-1)?.[1]);
    const running = server;
    const credentials = `${encodeURIComponent(user)}${options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`}`;
    const urlFor = (database: string): string => `postgres://${credentials}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`;
    return {
      url: urlFor('postgres'),
      urlFor,
      port: options.port,
      pid: running.pid,
      dataDir,
      baseBackup: backup,
      lastTransactionAt,
      stoppedAtTarget,
      walFiles: wal.files.size,
      durationMs: Date.now() - started,
      async stop(): Promise<void> {
        await running.stop('SIGINT', 30_000);
        await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.stop('SIGINT', 10_000);
    await rm(workDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function writeIfMissing(path: string, text: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  if (await stat(path).then(() => true, () => false)) return;
  await writeFile(path, text, { mode: 0o600 });
  if (owner !== undefined) await chown(path, owner.uid, owner.gid);
}

/** Polls the scratch server until it has left recovery ('promoted'), exited, or the deadline passed. */
async function waitForPromotion(
  server: RunningTool,
  connect: { port: number; user: string; password: string | undefined; deadline: number },
): Promise<'promoted' | 'exited' | 'timeout'> {
  for (;;) {
    if (server.exitStatus !== undefined) return 'exited';
    if (Date.now() > connect.deadline) return 'timeout';
    const client = new pg.Client({ host: '127.0.0.1', port: connect.port, user: connect.user, password: connect.password, database: 'postgres', connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
      if (rows[0]?.recovering === false) return 'promoted';
    } catch {
      // still recovering: hot standby is off, so it takes connections only once promoted
    } finally {
      await client.end().catch(() => undefined);
    }
    await Promise.race([sleep(200), server.exited]);
  }
}
