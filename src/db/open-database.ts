import { redactUrl } from '../config/config.js';
import type { DatabaseBackend } from './dialects/database-backend.js';
import { openMysql } from './dialects/mysql.js';
import { openPostgres } from './dialects/postgres.js';
import { openSqlite } from './dialects/sqlite.js';
import { KyselyDatabase } from './kysely-database.js';
import type { SeckillDatabase } from './seckill-database.js';

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** Connections in the pool (MariaDB/MySQL, PostgreSQL); SQLite always uses one. Default 10. */
  readonly poolSize?: number;
}

const DEFAULT_POOL_SIZE = 10;
const SCHEMES = 'sqlite:<path>, sqlite::memory:, mysql://, mariadb://, postgres://, postgresql://';

/**
 * Opens the database a `SECKILL_DATABASE_URL` names, picking the dialect from its scheme.
 * Connections are made lazily, so a server that is down fails the first query, not this
 * call; run {@link SeckillDatabase.migrate} before use.
 *
 * @example
 * const db = await openDatabase('sqlite:data/seckill.db');
 * const db = await openDatabase('sqlite::memory:');
 * const db = await openDatabase('mariadb://seckill:secret@127.0.0.1:3306/seckill', { poolSize: 20 });
 * const db = await openDatabase('postgres://seckill@127.0.0.1:5432/seckill');
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<SeckillDatabase> {
  return new KyselyDatabase(openDatabaseBackend(url, options));
}

/**
 * The kysely connection and dialect traits behind {@link openDatabase}, for code that
 * needs SQL of its own on the same schema (tests, drills checking row counts). Close it
 * with `backend.close()`.
 */
export function openDatabaseBackend(url: string, options: OpenDatabaseOptions = {}): DatabaseBackend {
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw new Error(`database pool size must be a whole number of at least 1, got ${poolSize}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite':
      return openSqlite(sqliteFileOf(url) ?? ':memory:');
    case 'mysql':
    case 'mariadb':
      return openMysql(url, poolSize);
    case 'postgres':
    case 'postgresql':
      return openPostgres(url, poolSize);
    default:
      throw new Error(
        `SECKILL_DATABASE_URL "${redactUrl(url)}" has an unknown scheme; use one of ${SCHEMES}`,
      );
  }
}

/**
 * The file of a `sqlite:` URL: `sqlite:data/seckill.db` is relative to the working folder,
 * `sqlite:/var/lib/seckill.db` and `sqlite:///var/lib/seckill.db` are absolute;
 * undefined for `sqlite::memory:`. The one reading of these URLs that backup, restore and
 * the census share with the database itself.
 *
 * @throws Error when the URL names no file at all (`sqlite:`).
 */
export function sqliteFileOf(url: string): string | undefined {
  const rest = url.slice('sqlite:'.length);
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (path.length === 0) {
    throw new Error(`SECKILL_DATABASE_URL "${url}" names no SQLite file; use sqlite:<path> or sqlite::memory:`);
  }
  return path === ':memory:' ? undefined : path;
}
