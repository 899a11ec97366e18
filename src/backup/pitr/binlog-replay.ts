import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupTarget } from '../backup-target.js';
import type { LogPosition } from '../backup-manifest.js';
import { downloadLogFile } from './archive-transfer.js';
import { byBinlogSequence, findBinlogArchive, type ArchivedBinlog } from './binlog-archive.js';
import { binlogSequence, isTransactionBoundary, walkBinlogEvents } from './binlog-file.js';
import { mariadbConnectionArgs, mariadbPasswordEnv, parseDatabaseAddress } from './database-address.js';
import { requireTool, RunningTool, ToolError } from './tool-process.js';

/** Options of {@link planBinlogReplay}: everything but where to apply it. */
export interface BinlogReplayRequest {
  readonly target: BackupTarget;
  /** Where the base backup's snapshot sits in the binlog (its manifest's `database.position`). */
  readonly from: LogPosition;
  /** Replay up to this instant (see {@link replayBinlogs} for the second boundary). */
  readonly until: Date;
  /** The database's name on the primary, as the binlog events carry it (the manifest's `database.name`); default the URL's. */
  readonly sourceDatabase?: string;
  /** The archive to read; default the one that holds `from.file`. */
  readonly archive?: string;
  /** When the base backup was taken (the manifest's `createdAt`): an `until` before it is refused. */
  readonly backupCreatedAt?: Date;
  /** Replay what the archive holds even when it is not known to be current up to `until` (the archiver lagged or died). */
  readonly allowIncompleteArchive?: boolean;
  /** Parent folder for the fetched binlogs; default the OS temp folder. They are removed afterwards. */
  readonly workDir?: string;
}

/** Options of {@link replayBinlogs}. */
export interface BinlogReplayOptions extends BinlogReplayRequest {
  /** The restored base backup to roll forward: `mysql://user:pass@host:port/<database>`. */
  readonly databaseUrl: string;
}

/** A replay that was checked against the archive and can be applied. */
export interface BinlogReplayPlan {
  readonly archive: string;
  /** The archived binlogs it will fetch, in order. */
  readonly files: readonly ArchivedBinlog[];
  /** The `--stop-datetime` it will pass (UTC). */
  readonly stopDatetime: string;
  /** The archive was known to hold everything committed before this instant. */
  readonly archivedThrough?: Date;
  /** One line for a restore's plan. */
  readonly description: string;
  /** Fetches the binlogs and replays them onto the restored database at `databaseUrl`. */
  apply(databaseUrl: string): Promise<BinlogReplayResult>;
}

/** What {@link replayBinlogs} replayed. */
export interface BinlogReplayResult {
  readonly archive: string;
  /** The binlogs fed to `mariadb-binlog`, in order. */
  readonly files: readonly string[];
  /** True when the last one was a snapshot of a binlog the server was still writing. */
  readonly endsInPartialFile: boolean;
  /** The `--stop-datetime` passed (UTC): events stamped at or after it were not replayed. */
  readonly stopDatetime: string;
  /** Time (second resolution) of the last transaction or DDL statement replayed; undefined when there was none. */
  readonly lastTransactionAt?: Date;
  /** The archive was known to hold everything committed before this instant. */
  readonly archivedThrough?: Date;
  /** Binlog bytes fetched and fed to the tools. */
  readonly bytes: number;
  readonly durationMs: number;
}

function utcDatetime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

function unixSeconds(iso: string | undefined): number | undefined {
  return iso === undefined ? undefined : Math.floor(Date.parse(iso) / 1000);
}

/** The archived binlogs from `first` on, up to the one in which the stop second falls; throws on a gap. */
function neededFiles(files: readonly ArchivedBinlog[], first: string, stopSecond: number, archive: string): ArchivedBinlog[] {
  const sorted = [...files].sort(byBinlogSequence);
  const start = sorted.findIndex((file) => file.name === first);
  const needed: ArchivedBinlog[] = [];
  for (const file of sorted.slice(start)) {
    const previous = needed.at(-1);
    if (previous !== undefined && (binlogSequence(file.name) ?? 0) !== (binlogSequence(previous.name) ?? 0) + 1) {
      throw new Error(
        `binlog archive ${archive} has a gap after ${previous.name} (next archived is ${file.name}): the binlogs in between were never archived; ` +
          `the database can only be rolled forward to the end of ${previous.name} (${previous.lastEventAt ?? 'unknown time'}); pass an earlier --until`,
      );
    }
    needed.push(file);
    if ((unixSeconds(file.lastEventAt) ?? 0) >= stopSecond) break;
  }
  return needed;
}

/** Time of the last transaction `mariadb-binlog` will replay, by its own stop rule (first event at or after the stop second). */
async function lastTransaction(paths: readonly string[], startPosition: number, stopSecond: number): Promise<number | undefined> {
  let last: number | undefined;
  let stopped = false;
  for (const [i, path] of paths.entries()) {
    if (stopped) break;
    await walkBinlogEvents(path, i === 0 ? startPosition : 0, (event) => {
      if (event.timestamp !== 0 && event.timestamp >= stopSecond) {
        stopped = true;
        return false;
      }
      if (isTransactionBoundary(event)) last = event.timestamp;
      return true;
    });
  }
  return last;
}

/**
 * Checks that the archive can roll a backup taken at `from` forward to `until`, before
 * anything is written: the archive holds the backup's position, has no gap, and is known
 * to be current up to `until` (unless `allowIncompleteArchive`). `apply` then does the
 * replay; see {@link replayBinlogs}.
 *
 * @throws Error naming what is missing and what to do instead.
 */
export async function planBinlogReplay(request: BinlogReplayRequest): Promise<BinlogReplayPlan> {
  const { from, until, target } = request;
  if (from.kind !== 'binlog') {
    throw new Error(`replayBinlogs rolls MariaDB/MySQL backups forward; this backup's position is a PostgreSQL WAL position (${from.lsn}); use restoreToTime with a base backup`);
  }
  if (Number.isNaN(until.getTime())) throw new Error('until is not a valid date');
  if (request.backupCreatedAt !== undefined && until < request.backupCreatedAt) {
    throw new Error(
      `--until ${until.toISOString()} is before the backup was taken (${request.backupCreatedAt.toISOString()}); ` +
        'a backup can only be rolled forward; pick an older backup',
    );
  }
  const index = await findBinlogArchive(target, from.file, request.archive);
  const archivedThrough = index.syncedAt === undefined ? undefined : new Date(index.syncedAt);
  if (request.allowIncompleteArchive !== true && (archivedThrough === undefined || archivedThrough < until)) {
    throw new Error(
      `binlog archive ${index.archive} is known to be complete only up to ${archivedThrough?.toISOString() ?? 'no time at all'}, ` +
        `before --until ${until.toISOString()}: the archiver lagged, stopped, or the primary is gone; ` +
        'check the archiver (its status shows lag and the last failure), pick an earlier --until, or allow an incomplete archive to replay what it holds',
    );
  }
  const stopSecond = Math.floor(until.getTime() / 1000);
  const files = neededFiles(index.files, from.file, stopSecond, index.archive);
  const last = files.at(-1);
  return {
    archive: index.archive,
    files,
    stopDatetime: utcDatetime(stopSecond),
    archivedThrough,
    description:
      `binlog archive ${index.archive} from ${from.file}:${from.position} through ${last?.name ?? from.file}${last?.complete === false ? ' (still being written)' : ''}, ` +
      `every event before ${utcDatetime(stopSecond)} UTC`,
    apply: async (databaseUrl) => {
      let current: { archive: string; files: readonly ArchivedBinlog[]; archivedThrough: Date | undefined } = { archive: index.archive, files, archivedThrough };
      for (let attempt = 1; ; attempt++) {
        try {
          return await applyReplay(request, current.archive, current.files, stopSecond, current.archivedThrough, databaseUrl);
        } catch (err) {
          // The archiver replaced the growing file while we fetched it; nothing was applied yet.
          if (!(err instanceof PartialFileMoved) || attempt >= 5) throw err;
          const again = await planBinlogReplay(request);
          current = { archive: again.archive, files: again.files, archivedThrough: again.archivedThrough };
        }
      }
    },
  };
}

/** The still-growing binlog copy changed on the target between reading the index and the file. */
class PartialFileMoved extends Error {
  override readonly name = 'PartialFileMoved';
  constructor(key: string) {
    super(`${key} changed while it was being fetched (the archiver is still updating it); fetch the index again`);
  }
}

/**
 * Rolls a restored logical backup forward to `until` with the server's own tools:
 * fetches the archived binlogs from the backup's position on, then
 * `mariadb-binlog --start-position=<pos> --stop-datetime=<until> --database=<db> file1 file2 … | mariadb <db>`.
 *
 * Binlog event times have second resolution, so the stop is the start of `until`'s
 * second: every event stamped before that second is replayed, none at or after it, and
 * nothing that happened after `until` is ever applied (events in the same second as
 * `until` but before it are left out; pick the next second to include them). `--start-position`
 * applies to the first file only, as the tool defines it. The tool reads the stop time in
 * its own time zone, which is set to UTC, whatever the server's.
 *
 * When the restore target's database has another name than the primary's, events are
 * rewritten to it (`--rewrite-db`).
 *
 * @throws Error when the archive does not hold the backup's position, has a gap, is not
 *   known to be current up to `until` (unless `allowIncompleteArchive`), or a tool fails.
 *
 * @example
 * await replayBinlogs({ target, from: manifest.database.position, until: new Date('2026-11-26T10:15:00Z'),
 *   databaseUrl: 'mysql://root@127.0.0.1:3307/seckill_restored', sourceDatabase: manifest.database.name });
 */
export async function replayBinlogs(options: BinlogReplayOptions): Promise<BinlogReplayResult> {
  return (await planBinlogReplay(options)).apply(options.databaseUrl);
}

async function applyReplay(
  request: BinlogReplayRequest,
  archive: string,
  files: readonly ArchivedBinlog[],
  stopSecond: number,
  archivedThrough: Date | undefined,
  databaseUrl: string,
): Promise<BinlogReplayResult> {
  const started = Date.now();
  const { target } = request;
  const from = request.from as Extract<LogPosition, { kind: 'binlog' }>;
  const address = parseDatabaseAddress(databaseUrl);
  if (address.engine !== 'mysql' || address.database === '') {
    throw new Error('replayBinlogs needs a MariaDB/MySQL URL naming the restored database, e.g. mysql://root@127.0.0.1:3307/seckill_restored');
  }
  const workDir = await mkdtemp(join(request.workDir ?? tmpdir(), 'seckill-binlog-replay-'));
  try {
    const paths: string[] = [];
    let bytes = 0;
    for (const file of files) {
      const path = join(workDir, file.name);
      const fetched = await downloadLogFile(target, file.key, path);
      if (fetched.sha256 !== file.sha256 || fetched.rawBytes !== file.size) {
        if (file.complete === false) throw new PartialFileMoved(file.key);
        throw new Error(
          `${file.key} on backup target ${target.name} does not match the archive index (sha256 or size differs): it is damaged; ` +
            'the database cannot be rolled forward past the previous file',
        );
      }
      bytes += fetched.rawBytes;
      paths.push(path);
    }
    const sourceDatabase = request.sourceDatabase ?? address.database;
    const binlog = new RunningTool(
      {
        command: requireTool('mariadb-binlog', 'mariadb-client'),
        args: [
          '--no-defaults',
          `--start-position=${from.position}`,
          `--stop-datetime=${utcDatetime(stopSecond)}`,
          ...(sourceDatabase === address.database ? [] : [`--rewrite-db=${sourceDatabase}->${address.database}`]),
          // MariaDB 10.11 filters on the name the events were written under, before the
          // rewrite (whatever its --help says); test/pitr.test.ts replays into another name to hold it to that.
          `--database=${sourceDatabase}`,
          ...paths,
        ],
      },
      ['ignore', 'pipe', 'pipe'],
    );
    const client = new RunningTool(
      {
        command: requireTool('mariadb', 'mariadb-client'),
        args: ['--no-defaults', ...mariadbConnectionArgs(address), '--binary-mode', address.database],
        env: mariadbPasswordEnv(address),
      },
      // The SQL flows from one tool to the other without passing through this process.
      [binlog.child.stdout ?? 'ignore', 'ignore', 'pipe'],
    );
    binlog.child.stdout?.destroy();
    const [binlogExit] = await Promise.all([binlog.exited, client.exited]);
    await client.succeeded(`applying the binlog events to ${address.database} on ${address.host}:${address.port}`);
    if (binlogExit.code !== 0) throw new ToolError(binlog.name, binlogExit, binlog.stderrTail, `reading the archived binlogs ${files.map((file) => file.name).join(', ')}`);
    const last = await lastTransaction(paths, from.position, stopSecond);
    return {
      archive,
      files: files.map((file) => file.name),
      endsInPartialFile: files.at(-1)?.complete === false,
      stopDatetime: utcDatetime(stopSecond),
      lastTransactionAt: last === undefined ? undefined : new Date(last * 1000),
      archivedThrough,
      bytes,
      durationMs: Date.now() - started,
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
