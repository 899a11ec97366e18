/**
 * The backup part: what the rest of Seckill may import from `src/backup` (engines live in
 * `src/backup/engines` with their own surface).
 */
export { runBackup } from './run-backup.js';
export type { BackupRunOptions, BackupRunResult, TargetOutcome } from './run-backup.js';
export { verifyArtifact, verifyBackup, verifyBackups } from './verify-backup.js';
export type { ArtifactProblem, ArtifactVerdict, BackupVerdict, VerifyOptions, VerifyRequest, VerifyRunResult } from './verify-backup.js';
export { restoreBackup } from './restore-backup.js';
export type { RestoreOptions, RestoreResult } from './restore-backup.js';
export { restoreFiles } from './restore-files.js';
export type { RestoreFilesOptions, RestoreFilesResult } from './restore-files.js';
export { replayLogs } from './log-replay.js';
export type { LogReplay, LogReplayRequest } from './log-replay.js';
export { pruneBackups, pruneTarget, INCOMPLETE_GRACE_MS } from './prune-backups.js';
export type { IncompleteDecision, PruneOptions, PruneResult, TargetPrune } from './prune-backups.js';
export { applyRetention, isoWeekBucket, NEWEST_DRILLED, retentionPolicyOf } from './retention-policy.js';
export type { RetentionCandidate, RetentionDecision, RetentionPolicy } from './retention-policy.js';
export {
  backupKeys,
  deleteBackup,
  DRILLS_FOLDER,
  hasPassedDrill,
  listBackups,
  listDrillReports,
  passedDrillIds,
  readDrillReport,
  readManifest,
  writeDrillReport,
  writeManifest,
} from './backup-catalog.js';
export type { CatalogListing, DamagedBackup, IncompleteBackup } from './backup-catalog.js';
export { backupIdTime, isBackupId, newBackupId } from './backup-id.js';
export { GENERATED_KEY_FILE, generatedKeyWarning, keyIdOf, loadBackupKey, parseKey } from './backup-key.js';
export type { BackupKey } from './backup-key.js';
export { ArtifactError } from './artifact-error.js';
export type { ArtifactCheck } from './artifact-error.js';
export { openArtifact } from './artifact-open.js';
export { sealArtifact } from './artifact-seal.js';
export type { SealedDigests, SealOptions } from './artifact-seal.js';
export { databaseLocation, databaseName, sameDatabase } from './database-location.js';
export { closeTarget, openTarget, openTargets } from './targets/open-target.js';
export { parseS3Url } from './targets/s3-target.js';
export type { ProgressEvent, ProgressListener } from './backup-progress.js';
export { formatBytes } from './byte-size.js';
export { MANIFEST_FILE } from './backup-manifest.js';
export type { ArtifactRecord, BackupManifest, BackupMethod, EngineName, LogPosition, SaleSnapshot } from './backup-manifest.js';
export type { BackupTarget } from './backup-target.js';
