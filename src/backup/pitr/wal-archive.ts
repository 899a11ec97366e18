import type { BackupTarget } from '../backup-target.js';
import { getJson } from './archive-transfer.js';

/**
 * The layout of one PostgreSQL cluster's WAL archive on a backup target:
 *
 * ```
 * pitr/wal/<system id>/state.json                          this record
 * pitr/wal/<system id>/000000010000000000000003.gz         a complete segment
 * pitr/wal/<system id>/000000010000000000000004.partial.gz the segment being written, as of the last sync
 * pitr/wal/<system id>/00000002.history.gz                 a timeline history file
 * ```
 *
 * Segments are found by listing; the record only says how current the archive is
 * (listing every segment in it would make it grow without end).
 */

/** Where every WAL archive lives on a target. */
export const WAL_ARCHIVE_ROOT = 'pitr/wal';

/** How current one WAL archive is. */
export interface WalArchiveState {
  readonly formatVersion: 1;
  readonly systemIdentifier: string;
  /** `host:port` it was archived from. */
  readonly source: string;
  readonly segmentSize: number;
  /** Everything the server had committed before this instant is in the archive (ISO 8601). */
  readonly syncedAt?: string;
  readonly updatedAt: string;
}

/** The key prefix of a cluster's WAL archive. */
export function walArchivePrefix(systemIdentifier: string): string {
  if (!/^\d+$/.test(systemIdentifier)) throw new Error(`${JSON.stringify(systemIdentifier)} is not a PostgreSQL system identifier`);
  return `${WAL_ARCHIVE_ROOT}/${systemIdentifier}`;
}

/** The key of a WAL archive's state record. */
export function walStateKey(systemIdentifier: string): string {
  return `${walArchivePrefix(systemIdentifier)}/state.json`;
}

/** Reads a WAL archive's state, or undefined when nothing was archived for that cluster. */
export function readWalArchiveState(target: BackupTarget, systemIdentifier: string): Promise<WalArchiveState | undefined> {
  return getJson<WalArchiveState>(target, walStateKey(systemIdentifier));
}
