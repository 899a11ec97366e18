/**
 * The manifest: everything known about one backup, written to each target as
 * `<id>/manifest.json` after every artifact is stored and checked. A backup without a
 * manifest is incomplete and is never listed, restored or counted (invariant I6's first
 * step: a partial upload never looks like a backup).
 */

/** The database engines a backup can come from. */
export type EngineName = 'sqlite' | 'mysql' | 'postgres';

/** How the database was copied. */
export type BackupMethod = 'sqlite-online-backup' | 'mariadb-dump' | 'mariabackup' | 'pg_dump';

/** One stored file of a backup. */
export interface ArtifactRecord {
  /** File name inside the backup, e.g. `database.sql.zst.enc`. */
  readonly name: string;
  readonly role: 'database' | 'files';
  /** For `files` artifacts, which file set. */
  readonly fileSet?: string;
  /** Bytes as stored (compressed and encrypted). */
  readonly size: number;
  /** SHA-256 (hex) of the stored bytes. */
  readonly sha256: string;
  /** Bytes before compression and encryption. */
  readonly rawSize: number;
  /** SHA-256 (hex) of the bytes before compression and encryption. */
  readonly rawSha256: string;
  readonly compression: 'zstd' | 'gzip' | 'none';
  /** Absent when the artifact is not encrypted. The key itself is never recorded. */
  readonly encryption?: { readonly algorithm: 'aes-256-gcm'; readonly keyId: string };
  /** For `files` artifacts: how many files the archive holds. */
  readonly fileCount?: number;
}

/** One sale as the backup saw it: the drill checks the restored database against this. */
export interface SaleSnapshot {
  readonly saleId: number;
  readonly stock: number;
  readonly sold: number;
  /** Orders with status created or paid. */
  readonly liveOrders: number;
}

/** Where in the database's change log the snapshot was taken, for point-in-time recovery. */
export type LogPosition =
  | { readonly kind: 'binlog'; readonly file: string; readonly position: number; readonly gtid?: string }
  | { readonly kind: 'wal'; readonly lsn: string; readonly timeline?: number };

export interface BackupManifest {
  readonly formatVersion: 1;
  /** Sortable and unique: `2026-11-26T05-30-00-123Z-<4 hex>`. */
  readonly id: string;
  /** When the snapshot was taken (ISO 8601); the recovery point of this backup. */
  readonly createdAt: string;
  readonly completedAt: string;
  readonly durationMs: number;
  /** What the set holds. */
  readonly contents: { readonly database: boolean; readonly files: boolean };
  /** The database part, when there is one. */
  readonly database?: {
    readonly engine: EngineName;
    readonly method: BackupMethod;
    /** Database name (no credentials). */
    readonly name: string;
    readonly tool: { readonly name: string; readonly version: string };
    readonly server: { readonly version: string };
    readonly rowCounts: Readonly<Record<string, number>>;
    readonly sales: readonly SaleSnapshot[];
    readonly position?: LogPosition;
  };
  readonly artifacts: readonly ArtifactRecord[];
  /** Host and program version that took it. */
  readonly origin: { readonly host: string; readonly seckillVersion: string };
}

/** The name of the manifest file inside a backup's folder on a target. */
export const MANIFEST_FILE = 'manifest.json';
