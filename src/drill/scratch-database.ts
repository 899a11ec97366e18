import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { EngineName } from '../backup/backup-manifest.js';
import { redactUrl } from '../config/config.js';

/** An empty database a drill restores into, and throws away afterwards. */
export interface ScratchDatabase {
  /** The database URL to restore into (with credentials). */
  readonly url: string;
  /** Where it is, for reports (no credentials). */
  readonly location: string;
  /** Drops the database (or removes the file); missing is fine. */
  drop(): Promise<void>;
}

/** Where scratch databases are made. */
export interface ScratchDatabaseOptions {
  /**
   * For MariaDB/MySQL and PostgreSQL: a URL on the server to create the scratch database
   * on, as a user allowed to CREATE and DROP DATABASE. Usually the configured
   * `databaseUrl` (same server, another database); a separate drill server keeps the
   * restore's load off the live one.
   */
  readonly serverUrl?: string;
  /** For SQLite: the folder the temporary file goes in. Default the OS temp folder. */
  readonly folder?: string;
}

/** Scratch database names start with this, so a leftover one is easy to recognise and drop. */
export const SCRATCH_DATABASE_PREFIX = 'seckill_drill_';

function scratchName(): string {
  return `${SCRATCH_DATABASE_PREFIX}${randomBytes(6).toString('hex')}`;
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function onMysql(serverUrl: string, statement: string): Promise<void> {
  const url = new URL(serverUrl);
  // Connected without a default database: the server's own may be the one being dropped.
  const connection = await createConnection({
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    connectTimeout: 10_000,
  });
  try {
    await connection.query(statement);
  } finally {
    await connection.end();
  }
}

async function onPostgres(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

function needServer(engine: EngineName, serverUrl: string | undefined): string {
  const wanted = engine === 'mysql' ? /^(mysql|mariadb):\/\//i : /^postgres(ql)?:\/\//i;
  if (serverUrl === undefined || !wanted.test(serverUrl)) {
    throw new Error(
      `the backup is of a ${engine} database, but no ${engine} server was given to restore it into ` +
        `(${serverUrl ? `got ${redactUrl(serverUrl)}` : 'none configured'}); ` +
        `pass a server URL (drill option scratchServerUrl, \`seckill drill --scratch-server <url>\`) as a user allowed to CREATE DATABASE`,
    );
  }
  return serverUrl;
}

/**
 * Creates an empty scratch database for a backup of `engine`: a new SQLite file in a temp
 * folder, or `seckill_drill_<random>` on the given MariaDB/MySQL or PostgreSQL server.
 * The caller drops it in a `finally`, whatever happened in between.
 *
 * @example
 * const scratch = await createScratchDatabase('postgres', { serverUrl: config.databaseUrl });
 * try { await restore(…, scratch.url); } finally { await scratch.drop(); }
 */
export async function createScratchDatabase(engine: EngineName, options: ScratchDatabaseOptions = {}): Promise<ScratchDatabase> {
  const name = scratchName();
  switch (engine) {
    case 'sqlite': {
      const folder = await mkdtemp(join(options.folder ?? tmpdir(), 'seckill-drill-'));
      const file = join(folder, `${name}.db`);
      return { url: `sqlite:${file}`, location: file, drop: () => rm(folder, { recursive: true, force: true }) };
    }
    case 'mysql': {
      const server = needServer(engine, options.serverUrl);
      // Names are spliced into SQL (identifiers cannot be bound); ours are hex and fixed text.
      await onMysql(server, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`).catch((err: Error) => {
        throw new Error(`could not create the scratch database ${name} on ${redactUrl(server)}: ${err.message}; the user needs the CREATE and DROP privileges there`, { cause: err });
      });
      const url = withDatabase(server, name);
      return { url, location: redactUrl(url), drop: () => onMysql(server, `DROP DATABASE IF EXISTS \`${name}\``) };
    }
    case 'postgres': {
      const server = needServer(engine, options.serverUrl);
      await onPostgres(server, `CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`).catch((err: Error) => {
        throw new Error(`could not create the scratch database ${name} on ${redactUrl(server)}: ${err.message}; the user needs CREATEDB there`, { cause: err });
      });
      const url = withDatabase(server, name);
      return {
        url,
        location: redactUrl(url),
        // FORCE ends sessions a failed restore or smoke test may have left open (PostgreSQL 13+).
        drop: () => onPostgres(server, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      };
    }
  }
}
