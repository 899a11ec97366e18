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

/**
 * The part both archivers share: the periodic copy of the spool to the target (calls never
 * overlap), and the progress that {@link ArchiverStatus} reports. Each archiver supplies its
 * own copy step and updates the counters as it stores files.
 */
export class ArchiveSyncLoop {
  syncedAt: Date | undefined;
  bytesBehind: number | undefined;
  lastUploadAt: Date | undefined;
  uploadedBytes = 0;
  lastFailure: string | undefined;
  readonly #syncOnce: () => Promise<void>;
  readonly #onFailure: ((reason: string) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> = Promise.resolve();

  constructor(syncOnce: () => Promise<void>, onFailure?: (reason: string) => void) {
    this.#syncOnce = syncOnce;
    this.#onFailure = onFailure;
  }

  /** Syncs every `intervalMs` until {@link stopTimer}; the timer does not keep the process alive. */
  startTimer(intervalMs: number): void {
    this.#timer = setInterval(() => {
      this.sync().catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }

  stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Runs one copy after any copy in progress; a failure is recorded and rethrown to this caller. */
  sync(): Promise<void> {
    const run = this.#syncing.then(() => this.#syncOnce());
    this.#syncing = run.catch((error: unknown) => this.fail(`sync failed: ${error instanceof Error ? error.message : String(error)}`));
    return run;
  }

  /** Records why the tool died or a sync failed, and tells the owner. */
  fail(reason: string): void {
    this.lastFailure = reason;
    this.#onFailure?.(reason);
  }

  /** Counts a log file stored on the target. */
  uploaded(rawBytes: number): void {
    this.lastUploadAt = new Date();
    this.uploadedBytes += rawBytes;
  }

  /** The status, with the streaming tool's state. */
  status(tool: { readonly running: boolean; readonly pid?: number; readonly restarts: number }): ArchiverStatus {
    return {
      running: tool.running,
      pid: tool.pid,
      restarts: tool.restarts,
      lastFailure: this.lastFailure,
      syncedAt: this.syncedAt,
      lagSeconds: this.syncedAt === undefined ? undefined : (Date.now() - this.syncedAt.getTime()) / 1000,
      bytesBehind: this.bytesBehind,
      lastUploadAt: this.lastUploadAt,
      uploadedBytes: this.uploadedBytes,
    };
  }
}
