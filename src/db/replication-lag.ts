import { sql } from 'kysely';
import type { DatabaseBackend } from './dialects/database-backend.js';

/**
 * How far the server behind `backend` is behind its primary, in milliseconds, as the
 * server itself reports it: 0 for a server that is not a replica (a primary, or a replica
 * promoted since it was configured, serves current data); undefined when it is a replica
 * that is not applying changes (replication stopped or broken), whose data may be stale
 * by any amount.
 *
 * - MariaDB/MySQL: `SHOW SLAVE STATUS` — the SQL thread must run; `Seconds_Behind_Master`
 *   has whole seconds only, so "0" means under a second, and it is NULL (undefined here)
 *   while the IO thread is not connected to the primary.
 * - PostgreSQL: a standby must be streaming from its primary; one that has replayed all it
 *   received is current (0), otherwise the age of the last transaction it replayed.
 * - SQLite has no replicas: always 0.
 */
export async function replicationLagMs(backend: DatabaseBackend): Promise<number | undefined> {
  switch (backend.dialect) {
    case 'sqlite':
      return 0;
    case 'mysql': {
      const result = await sql.raw<Record<string, unknown>>('SHOW SLAVE STATUS').execute(backend.db);
      const status = result.rows[0];
      if (!status) return 0;
      if (status.Slave_SQL_Running !== 'Yes') return undefined;
      const seconds = status.Seconds_Behind_Master;
      return seconds === null || seconds === undefined ? undefined : Number(seconds) * 1000;
    }
    case 'postgres': {
      const result = await sql<{ replica: boolean; streaming: boolean; caught_up: boolean | null; lag_ms: string | number | null }>`
        SELECT pg_is_in_recovery() AS replica,
               EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming,
               pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,
               EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) * 1000 AS lag_ms`.execute(backend.db);
      const row = result.rows[0];
      if (!row || !row.replica) return 0;
      // Cut off from its primary it may be behind by anything, however "caught up" it looks.
      if (!row.streaming) return undefined;
      // Nothing received is left to replay: as current as the primary has shipped.
      if (row.caught_up) return 0;
      return row.lag_ms === null ? undefined : Math.max(0, Number(row.lag_ms));
    }
  }
}
