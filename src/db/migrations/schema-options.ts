import type { RawBuilder } from 'kysely';
import type { DatabaseDialect } from '../seckill-database.js';

/** What the migrations need to know about the server they create tables on. */
export interface SchemaOptions {
  readonly dialect: DatabaseDialect;
  /**
   * Appended to every CREATE TABLE (MySQL/MariaDB: engine, charset and a binary,
   * no-pad collation so `'Bob'`, `'bob'` and `'bob '` stay three different users).
   */
  readonly tableOptions?: RawBuilder<unknown>;
}
