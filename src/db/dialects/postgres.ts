import { Kysely, PostgresDialect } from 'kysely';
import type { InsertQueryBuilder } from 'kysely';
import { types } from 'pg';
import type { CustomTypesConfig } from 'pg';
import type { SeckillTables } from '../tables.js';
import type { DatabaseBackend } from './database-backend.js';
import { createPostgresPool } from './postgres-pool.js';

/** SQLSTATEs after which PostgreSQL has aborted the whole transaction and a rerun is safe. */
const RETRYABLE_SQLSTATES = new Set(['40P01' /* deadlock_detected */, '40001' /* serialization_failure */]);

/**
 * BIGINT (int8) as a number, for this pool only: pg returns strings by default because
 * int8 can exceed 2^53, but our int8 values are millisecond timestamps and counts.
 */
const int8AsNumber: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === types.builtins.INT8
      ? (value: string) => Number(value)
      : types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

/**
 * Opens a pg pool on a `postgres://` or `postgresql://` URL (see {@link createPostgresPool}
 * for its limits, and `connect_timeout` / `query_timeout` in the URL to change them).
 */
export function openPostgres(url: string, poolSize: number): DatabaseBackend {
  const pool = createPostgresPool(url, poolSize, int8AsNumber);
  const db = new Kysely<SeckillTables>({ dialect: new PostgresDialect({ pool }) });
  return {
    dialect: 'postgres',
    db,
    maxParameters: 65_535,
    rowLocks: true,
    returning: true,
    ignoreConflicts: <DB, TB extends keyof DB, O>(query: InsertQueryBuilder<DB, TB, O>) =>
      query.onConflict((conflict) => conflict.doNothing()),
    isRetryableConflict: (error) => RETRYABLE_SQLSTATES.has(String((error as { code?: unknown } | null)?.code)),
    tableOptions: async () => undefined,
    close: () => db.destroy(),
  };
}
