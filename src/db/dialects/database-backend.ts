import type { InsertQueryBuilder, Kysely, RawBuilder } from 'kysely';
import type { DatabaseDialect } from '../seckill-database.js';
import type { SeckillTables } from '../tables.js';

/**
 * What differs between SQLite, MariaDB/MySQL and PostgreSQL, and nothing else: the shared
 * queries in `KyselyDatabase` ask this object instead of testing the dialect name.
 */
export interface DatabaseBackend {
  readonly dialect: DatabaseDialect;
  readonly db: Kysely<SeckillTables>;
  /** Most bind parameters one statement may carry (SQLite 32766, PostgreSQL 65535). */
  readonly maxParameters: number;
  /**
   * Whether `SELECT … FOR UPDATE` exists. SQLite has no row locks; its transactions start
   * with `BEGIN IMMEDIATE`, which serialises writers just as well.
   */
  readonly rowLocks: boolean;
  /** Whether `INSERT … RETURNING` gives a new sale back; otherwise the driver's insert id does. */
  readonly returning: boolean;

  /** Makes an insert skip rows that hit a primary or unique key instead of failing. */
  ignoreConflicts<DB, TB extends keyof DB, O>(query: InsertQueryBuilder<DB, TB, O>): InsertQueryBuilder<DB, TB, O>;

  /**
   * Whether the server aborted a whole transaction to break a deadlock or a serialisation
   * conflict, so running it again from the start is safe and expected.
   */
  isRetryableConflict(error: unknown): boolean;

  /** Options appended to CREATE TABLE (engine, charset, collation), if the server needs any. */
  tableOptions(): Promise<RawBuilder<unknown> | undefined>;

  /** Ends this handle's connections; use instead of `db.destroy()`, which a shared SQLite file must not get. */
  close(): Promise<void>;
}
