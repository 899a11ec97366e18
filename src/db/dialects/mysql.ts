import { CompiledQuery, Kysely, MysqlDialect, sql } from 'kysely';
import type { InsertQueryBuilder } from 'kysely';
import { createPool } from 'mysql2';
import type { SeckillTables } from '../tables.js';
import type { DatabaseBackend } from './database-backend.js';

/** The session's sql_mode, whatever the server's default is. */
const SQL_MODE = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/** ER_LOCK_DEADLOCK: InnoDB rolled the whole transaction back to break a deadlock. */
const ER_LOCK_DEADLOCK = 1213;

/**
 * Opens a mysql2 pool on a MariaDB or MySQL URL (`mysql://user:pass@host:port/db`,
 * `mariadb://…` alike; query parameters become mysql2 options).
 */
export function openMysql(url: string, poolSize: number): DatabaseBackend {
  const pool = createPool({
    // mysql2 reads host, port, user, password and database from any scheme.
    uri: url,
    connectionLimit: poolSize,
    // BIGINT columns come back as numbers while they fit (all our ms timestamps do).
    supportBigNumbers: true,
    bigNumberStrings: false,
  });
  const db = new Kysely<SeckillTables>({
    dialect: new MysqlDialect({
      pool,
      async onCreateConnection(connection) {
        // READ COMMITTED as on PostgreSQL: every statement sees the latest commits, and
        // InnoDB takes no gap locks, so expiry scans do not block the order writer's inserts.
        await connection.executeQuery(CompiledQuery.raw('set session transaction isolation level read committed'));
        // Strict, whatever the server's default: a value that does not fit fails instead of
        // being truncated, and a missing InnoDB fails instead of silently becoming MyISAM.
        await connection.executeQuery(CompiledQuery.raw(`set session sql_mode = '${SQL_MODE}'`));
      },
    }),
  });
  return {
    dialect: 'mysql',
    db,
    // mysql2 inlines values client-side, so this bounds the packet size, not a protocol limit.
    maxParameters: 65_535,
    rowLocks: true,
    returning: false,
    ignoreConflicts: <DB, TB extends keyof DB, O>(query: InsertQueryBuilder<DB, TB, O>) => query.ignore(),
    isRetryableConflict: (error) => (error as { errno?: unknown } | null)?.errno === ER_LOCK_DEADLOCK,
    tableOptions: async () => {
      const { rows } = await sql<{ version: string }>`select version() as version`.execute(db);
      // A binary, no-pad collation compares ids byte by byte, as SQLite and PostgreSQL do.
      const collation = /mariadb/i.test(rows[0]?.version ?? '') ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
      return sql`engine = InnoDB default charset = utf8mb4 collate = ${sql.raw(collation)}`;
    },
    close: () => db.destroy(),
  };
}
