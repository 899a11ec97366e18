import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';

/** Which SQL server a {@link DatabaseServer} is. MariaDB counts as `mysql` (same protocol and URLs). */
export type DatabaseServerKind = 'mysql' | 'postgres';

/**
 * A MariaDB or PostgreSQL server that tests create throwaway databases on, either
 * private to this process (`startMariaDb()`, `startPostgres()`) or shared by a whole
 * `npm test` run (`sharedMariaDb()`, `sharedPostgres()` in `servers.ts`).
 */
export interface DatabaseServer {
  readonly kind: DatabaseServerKind;
  /** Always `127.0.0.1`. */
  readonly host: string;
  readonly port: number;
  /** Superuser URL: `mysql://root@127.0.0.1:P/` or `postgres://postgres@127.0.0.1:P/postgres`. */
  readonly rootUrl: string;
  /** Pid of the server process; undefined for a server this process does not own. */
  readonly pid: number | undefined;
  /** The URL of one database on this server, as the superuser. */
  urlFor(database: string): string;
  /**
   * Creates a uniquely named, empty database and returns its URL.
   * @param prefix - start of the name (letters, digits, `_`); default `seckill_test`.
   */
  createDatabase(prefix?: string): Promise<string>;
  /** Drops a database (and, on PostgreSQL, ends its open connections). Missing is fine. */
  dropDatabase(name: string): Promise<void>;
  /**
   * Sends a signal to the server process (SIGKILL to crash it, SIGSTOP/SIGCONT to hang it).
   * @throws Error for a server this process does not own (a shared one).
   */
  kill(signal: NodeJS.Signals): void;
  /** Stops the server and removes its files; a no-op for a server this process does not own. */
  stop(): Promise<void>;
}

/** How a concrete server plugs its process into {@link createDatabaseServer}. */
export interface DatabaseServerProcess {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;
let created = 0;

/**
 * A database name no other test (in this or a parallel process) uses:
 * `<prefix>_<pid>_<counter>_<random>`, at most 63 characters (the PostgreSQL limit).
 */
export function uniqueDatabaseName(prefix = 'seckill_test'): string {
  created += 1;
  const suffix = `_${process.pid}_${created}_${randomBytes(3).toString('hex')}`;
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63 - suffix.length) + suffix;
  return checkedName(name);
}

// Names are spliced into SQL (identifiers cannot be bound as parameters).
function checkedName(name: string): string {
  if (!NAME.test(name)) {
    throw new Error(`invalid database name ${JSON.stringify(name)}: use lowercase letters, digits and _ (at most 63)`);
  }
  return name;
}

async function runAdminStatement(kind: DatabaseServerKind, rootUrl: string, sql: string): Promise<void> {
  if (kind === 'mysql') {
    const url = new URL(rootUrl);
    const connection = await createConnection({
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      connectTimeout: 10_000,
    });
    try {
      await connection.query(sql);
    } finally {
      await connection.end();
    }
  } else {
    const client = new pg.Client({ connectionString: rootUrl, connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }
}

function parseRootUrl(rootUrl: string): { kind: DatabaseServerKind; host: string; port: number; base: string } {
  const url = new URL(rootUrl);
  const kind: DatabaseServerKind | undefined =
    url.protocol === 'mysql:' || url.protocol === 'mariadb:'
      ? 'mysql'
      : url.protocol === 'postgres:' || url.protocol === 'postgresql:'
        ? 'postgres'
        : undefined;
  if (kind === undefined || url.port === '') {
    throw new Error(`unsupported database server URL ${rootUrl}: expected mysql://root@127.0.0.1:PORT/ or postgres://postgres@127.0.0.1:PORT/postgres`);
  }
  const credentials = url.password === '' ? url.username : `${url.username}:${url.password}`;
  return { kind, host: url.hostname, port: Number(url.port), base: `${url.protocol}//${credentials}@${url.host}/` };
}

/**
 * Wraps a server's root URL (and, when we own it, its process) as a {@link DatabaseServer}.
 *
 * @param rootUrl - e.g. `postgres://postgres@127.0.0.1:5544/postgres`.
 * @param owned - the process, when this process started the server; omit for a server
 *   started elsewhere (test/run.ts): then stop() does nothing and kill() throws.
 */
export function createDatabaseServer(rootUrl: string, owned?: DatabaseServerProcess): DatabaseServer {
  const { kind, host, port, base } = parseRootUrl(rootUrl);
  const urlFor = (database: string): string => `${base}${checkedName(database)}`;
  return {
    kind,
    host,
    port,
    rootUrl,
    pid: owned?.pid,
    urlFor,
    async createDatabase(prefix?: string): Promise<string> {
      const name = uniqueDatabaseName(prefix);
      await runAdminStatement(
        kind,
        rootUrl,
        kind === 'mysql' ? `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci` : `CREATE DATABASE "${name}" ENCODING 'UTF8'`,
      );
      return urlFor(name);
    },
    async dropDatabase(name: string): Promise<void> {
      checkedName(name);
      await runAdminStatement(
        kind,
        rootUrl,
        kind === 'mysql' ? `DROP DATABASE IF EXISTS \`${name}\`` : `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
      );
    },
    kill(signal: NodeJS.Signals): void {
      if (owned === undefined) {
        throw new Error(
          `refusing to send ${signal} to the ${kind} server at ${host}:${port}: this process does not own it ` +
            '(it is shared by the whole test run); start a private one with startMariaDb() or startPostgres()',
        );
      }
      owned.kill(signal);
    },
    async stop(): Promise<void> {
      await owned?.stop();
    },
  };
}
