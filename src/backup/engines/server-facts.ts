import { sql } from 'kysely';
import { openDatabaseBackend } from '../../db/open-database.js';
import type { DatabaseBackend } from '../../db/dialects/database-backend.js';
import type { LogPosition } from '../backup-manifest.js';

/** What the MariaDB/MySQL engines ask the server before they run a tool. */
export interface MysqlServerFacts {
  /** `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1-log`. */
  readonly version: string;
  readonly isMariaDb: boolean;
  /** Whether the server writes a binary log, so a dump can record its position. */
  readonly binlog: boolean;
  /** The server's data folder, which mariabackup reads directly. */
  readonly dataDir: string;
}

/** What the PostgreSQL engine asks the server before it runs a tool. */
export interface PostgresServerFacts {
  /** `server_version`, e.g. `15.19 (Debian 15.19-0+deb12u1)`. */
  readonly version: string;
  /** `server_version_num`, e.g. 150019. */
  readonly versionNum: number;
}

/** Asks a MariaDB/MySQL server for its version, whether it writes a binlog, and its data folder. */
export async function mysqlServerFacts(url: string): Promise<MysqlServerFacts> {
  return ask(url, async ({ db }) => {
    const { rows } = await sql<{ version: string; log_bin: unknown; datadir: string }>`
      select version() as version, @@log_bin as log_bin, @@datadir as datadir`.execute(db);
    const row = rows[0];
    if (row === undefined) throw new Error('the server answered SELECT VERSION() with no row');
    return { version: row.version, isMariaDb: /mariadb/i.test(row.version), binlog: Number(row.log_bin) === 1, dataDir: row.datadir };
  });
}

/** Asks a PostgreSQL server for its version. */
export async function postgresServerFacts(url: string): Promise<PostgresServerFacts> {
  return ask(url, async ({ db }) => {
    const { rows } = await sql<{ version: string; num: string }>`
      select current_setting('server_version') as version, current_setting('server_version_num') as num`.execute(db);
    const row = rows[0];
    if (row === undefined) throw new Error('the server answered SHOW server_version with no row');
    return { version: row.version, versionNum: Number(row.num) };
  });
}

/**
 * The server's current WAL position (the replayed one on a standby) and timeline, or
 * undefined when the server will not say. For a logical dump it is informational: it tells
 * where WAL archiving must reach for a later point-in-time restore from a base backup.
 */
export async function postgresWalPosition(url: string): Promise<LogPosition | undefined> {
  return ask(url, async ({ db }) => {
    let lsn: string | undefined;
    try {
      const { rows } = await sql<{ lsn: string | null }>`
        select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn`.execute(db);
      lsn = rows[0]?.lsn ?? undefined;
    } catch {
      return undefined;
    }
    if (lsn === undefined) return undefined;
    try {
      // pg_control_checkpoint() is for superusers and pg_monitor members only.
      const { rows } = await sql<{ timeline: number | null }>`select timeline_id as timeline from pg_control_checkpoint()`.execute(db);
      const timeline = rows[0]?.timeline;
      return timeline === null || timeline === undefined ? { kind: 'wal', lsn } : { kind: 'wal', lsn, timeline: Number(timeline) };
    } catch {
      return { kind: 'wal', lsn };
    }
  });
}

async function ask<T>(url: string, question: (backend: DatabaseBackend) => Promise<T>): Promise<T> {
  const backend = openDatabaseBackend(url, { poolSize: 1 });
  try {
    return await question(backend);
  } finally {
    await backend.close();
  }
}
