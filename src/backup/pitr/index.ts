/**
 * Point-in-time recovery: what the rest of Seckill may import from `src/backup/pitr`.
 * MariaDB/MySQL rolls a logical dump forward through the archived binlog; PostgreSQL
 * restores a physical base backup and replays the archived WAL to a time.
 */
export type { ArchiverStatus, ArchiverTiming } from './archiver-status.js';
export { BinlogArchiver, type BinlogArchiverOptions } from './binlog-archiver.js';
export { BINLOG_ARCHIVE_ROOT, findBinlogArchive, readBinlogIndex, type ArchivedBinlog, type BinlogArchiveIndex } from './binlog-archive.js';
export { planBinlogReplay, replayBinlogs, type BinlogReplayOptions, type BinlogReplayPlan, type BinlogReplayRequest, type BinlogReplayResult } from './binlog-replay.js';
export { baseBackupFor, baseBackupPosition, BASE_BACKUP_ROOT, listBaseBackups, readBaseBackup, takeBaseBackup, type BaseBackup, type BaseBackupOptions } from './base-backup.js';
export { WalArchiver, type WalArchiverOptions } from './wal-archiver.js';
export { readWalArchiveState, WAL_ARCHIVE_ROOT, type WalArchiveState } from './wal-archive.js';
export { restoreToTime, type PointInTimeRestoreOptions, type RestoredServer } from './point-in-time-restore.js';
