import type { BackupTarget } from '../backup-target.js';
import { getJson } from './archive-transfer.js';
import { binlogSequence } from './binlog-file.js';

/**
 * The layout of one server's binlog archive on a backup target:
 *
 * ```
 * pitr/binlog/<archive>/index.json                  this index
 * pitr/binlog/<archive>/mariadb-bin.000041.gz       a complete binary log
 * pitr/binlog/<archive>/mariadb-bin.000042.partial.gz  the one still being written, as of the last sync
 * ```
 *
 * The index is written after the files it names, so it never points at a missing file.
 */

/** Where every binlog archive lives on a target. */
export const BINLOG_ARCHIVE_ROOT = 'pitr/binlog';

/** One archived binary log. */
export interface ArchivedBinlog {
  /** The server's name for it, e.g. `mariadb-bin.000042`. */
  readonly name: string;
  /** Its key on the target (gzip). */
  readonly key: string;
  /** False while the server still writes it: the key then holds a snapshot cut at an event boundary. */
  readonly complete: boolean;
  /** Bytes archived (before compression). */
  readonly size: number;
  /** SHA-256 (hex) of those bytes. */
  readonly sha256: string;
  /** Earliest event time in it (ISO 8601, second resolution). */
  readonly firstEventAt?: string;
  /** Latest event time in it (ISO 8601, second resolution). */
  readonly lastEventAt?: string;
}

/** The index of one server's binlog archive. */
export interface BinlogArchiveIndex {
  readonly formatVersion: 1;
  readonly archive: string;
  /** The server's `server_id`. */
  readonly serverId: number;
  /** `host:port` it was archived from. */
  readonly source: string;
  /** Sorted by sequence number. */
  readonly files: readonly ArchivedBinlog[];
  /** Everything the server had committed before this instant is in the archive (ISO 8601). */
  readonly syncedAt?: string;
  readonly updatedAt: string;
}

/** The key prefix of one archive. */
export function binlogArchivePrefix(archive: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(archive)) {
    throw new Error(`binlog archive name ${JSON.stringify(archive)} may only hold letters, digits, '.', '_' and '-'`);
  }
  return `${BINLOG_ARCHIVE_ROOT}/${archive}`;
}

/** The key of an archive's index. */
export function binlogIndexKey(archive: string): string {
  return `${binlogArchivePrefix(archive)}/index.json`;
}

/** Reads an archive's index, or undefined when there is none yet. */
export function readBinlogIndex(target: BackupTarget, archive: string): Promise<BinlogArchiveIndex | undefined> {
  return getJson<BinlogArchiveIndex>(target, binlogIndexKey(archive));
}

/** Orders binary log names by sequence number. */
export function byBinlogSequence(a: { readonly name: string }, b: { readonly name: string }): number {
  return (binlogSequence(a.name) ?? 0) - (binlogSequence(b.name) ?? 0);
}

/**
 * Finds the archive that holds `binlogFile` (a backup's recorded position). With
 * `archive` given, only that one is read.
 *
 * @throws Error when no archive, or more than one, holds it.
 */
export async function findBinlogArchive(target: BackupTarget, binlogFile: string, archive?: string): Promise<BinlogArchiveIndex> {
  const names =
    archive !== undefined
      ? [archive]
      : [...new Set((await target.list(`${BINLOG_ARCHIVE_ROOT}/`)).filter((key) => key.endsWith('/index.json')).map((key) => key.split('/')[2] ?? ''))];
  const holding: BinlogArchiveIndex[] = [];
  for (const name of names) {
    const index = await readBinlogIndex(target, name);
    if (index?.files.some((file) => file.name === binlogFile)) holding.push(index);
  }
  if (holding.length === 0) {
    throw new Error(
      `no binlog archive on backup target ${target.name} (${target.location}) holds ${binlogFile}, where the backup's position is; ` +
        'the binlog archiver was not running (or archived another server) when the backup was taken, so this backup cannot be rolled forward; ' +
        'restore it without --until, or use a backup taken while the archiver ran',
    );
  }
  if (holding.length > 1) {
    throw new Error(`binlog archives ${holding.map((index) => index.archive).join(', ')} on ${target.name} all hold ${binlogFile}; say which one to replay from (archive option)`);
  }
  return holding[0] as BinlogArchiveIndex;
}
