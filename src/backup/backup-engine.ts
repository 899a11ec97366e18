import type { Readable } from 'node:stream';
import type { BackupMethod, EngineName, LogPosition } from './backup-manifest.js';

/** Versions of the dump tool and the server, and whether the one can dump the other. */
export interface ToolCheck {
  readonly tool: { readonly name: string; readonly version: string };
  readonly server: { readonly version: string };
  /** False when the tool's major version cannot faithfully dump this server: the backup is refused. */
  readonly compatible: boolean;
  /** Why not, with what to install or configure. */
  readonly reason?: string;
}

/** A database dump in progress: read `stream` to the end, then await `finished`. */
export interface DumpStream {
  /** The raw dump bytes (before compression and encryption). */
  readonly stream: Readable;
  /** Resolves when the tool exited cleanly; rejects with its stderr otherwise. */
  readonly finished: Promise<{ readonly position?: LogPosition }>;
}

/**
 * Drives one database's own backup tools: `mariadb-dump`/`mysqldump --single-transaction`
 * or `mariabackup`, `pg_dump -Fc`, SQLite's online backup API. Dumps take a consistent
 * snapshot without a lock that stops purchases.
 */
export interface BackupEngine {
  readonly engine: EngineName;
  readonly method: BackupMethod;
  /** File name suffix of the raw dump, e.g. `.sql`, `.pgdump`, `.sqlite`, `.xbstream`. */
  readonly extension: string;

  /** Tool and server versions for the database at `url`. */
  check(url: string): Promise<ToolCheck>;

  /** Starts a consistent dump of the database at `url`. */
  dump(url: string): Promise<DumpStream>;

  /** Restores a raw dump (as `dump` produced it) into the database at `url`, which must exist and be empty. */
  restore(dump: Readable, url: string): Promise<void>;
}
