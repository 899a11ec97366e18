/**
 * How a log archiver (binlog or WAL) is doing, for health checks, metrics and alerts.
 * The number that matters is `lagSeconds`: it is the recovery point objective right now,
 * the most a point-in-time restore could lose if the primary vanished this instant.
 */
export interface ArchiverStatus {
  /** True while the streaming tool (`mariadb-binlog` / `pg_receivewal`) runs. */
  readonly running: boolean;
  /** Its pid while it runs. */
  readonly pid?: number;
  /** How often it was restarted after it died. */
  readonly restarts: number;
  /** Why the tool last died or the last sync failed, with the tool's own words; cleared by the next good sync. */
  readonly lastFailure?: string;
  /** Everything the server had committed before this instant is stored on the target. */
  readonly syncedAt?: Date;
  /** Seconds from `syncedAt` to now; undefined before the first good sync. */
  readonly lagSeconds?: number;
  /** How far the archived log was behind the server at the last sync, in bytes, when known. */
  readonly bytesBehind?: number;
  /** When a log file was last stored on the target. */
  readonly lastUploadAt?: Date;
  /** Log bytes (before compression) stored since start. */
  readonly uploadedBytes: number;
}

/** Options both archivers share. */
export interface ArchiverTiming {
  /**
   * How often the spool is copied to the target, including the log file still being
   * written; this bounds the RPO. Default 5000 ms.
   */
  readonly syncIntervalMs?: number;
  /** First delay before restarting a dead streaming tool; doubled per failure in a row. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** Longest delay between restarts. Default 30000 ms. */
  readonly maxRestartDelayMs?: number;
}
