import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, InsertQueryBuilder, SqliteDialectConfig } from 'kysely';
import type { SeckillTables } from '../tables.js';
import type { DatabaseBackend } from './database-backend.js';

/** How long a writer waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/** A file's one connection in this process, and how many handles use it. */
interface SharedFile {
  readonly db: Kysely<SeckillTables>;
  handles: number;
}

/**
 * Open files by absolute path. better-sqlite3 is synchronous: a second connection to the
 * same file in the same process would wait for the write lock by blocking the very thread
 * the first connection needs to finish its transaction, so every handle on a file shares
 * one connection (kysely queues its transactions). Other processes still get their own.
 */
const openFiles = new Map<string, SharedFile>();

/**
 * Opens a SQLite file (`:memory:` for a private in-memory database) in WAL mode, creating
 * its folder. Handles on the same file in one process share its connection.
 *
 * @example
 * const backend = openSqlite('data/seckill.db');
 */
export function openSqlite(path: string): DatabaseBackend {
  const key = path === ':memory:' ? undefined : resolve(path);
  let file = key === undefined ? undefined : openFiles.get(key);
  if (file === undefined) {
    file = { db: connect(key), handles: 0 };
    if (key !== undefined) openFiles.set(key, file);
  }
  file.handles += 1;
  const shared = file;
  let closed = false;
  return {
    dialect: 'sqlite',
    db: shared.db,
    maxParameters: 32_766,
    rowLocks: false,
    returning: true,
    ignoreConflicts: <DB, TB extends keyof DB, O>(query: InsertQueryBuilder<DB, TB, O>) =>
      query.onConflict((conflict) => conflict.doNothing()),
    // busy_timeout already waited; a write lock still held after it is a real failure.
    isRetryableConflict: () => false,
    tableOptions: async () => undefined,
    async close() {
      if (closed) return;
      closed = true;
      shared.handles -= 1;
      if (shared.handles > 0) return;
      if (key !== undefined) openFiles.delete(key);
      await shared.db.destroy();
    },
  };
}

function connect(file: string | undefined): Kysely<SeckillTables> {
  if (file !== undefined) mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file ?? ':memory:');
  try {
    if (file !== undefined) database.pragma('journal_mode = WAL');
    // In WAL mode NORMAL still survives a crash of the process (a commit is in the WAL
    // before it returns); only an OS crash or power cut may undo the latest commits.
    // Deployments that must survive those use MariaDB or PostgreSQL.
    database.pragma('synchronous = NORMAL');
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database.close();
    throw error;
  }
  return new Kysely<SeckillTables>({ dialect: new ImmediateSqliteDialect({ database }) });
}

/**
 * Begins every transaction with `BEGIN IMMEDIATE`: a deferred transaction that reads first
 * and writes later fails at once with SQLITE_BUSY_SNAPSHOT when another process wrote in
 * between, whatever busy_timeout says; taking the write lock up front makes it wait instead.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}
