/**
 * Where a database server is and who to log in as, taken from a Seckill database URL,
 * in the pieces the command-line tools want: host and port as options, the password
 * for the environment (never on a command line, where `ps` would show it).
 */
export interface DatabaseAddress {
  readonly engine: 'mysql' | 'postgres';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Empty when the URL has none. */
  readonly password: string;
  /** Empty when the URL names no database. */
  readonly database: string;
}

/** `host:port`, for messages and archive names (no credentials). */
export function describeAddress(address: DatabaseAddress): string {
  return `${address.host}:${address.port}`;
}

/**
 * Parses `mysql://` / `mariadb://` and `postgres://` / `postgresql://` URLs.
 *
 * @throws Error for another scheme, naming the accepted ones.
 */
export function parseDatabaseAddress(url: string): DatabaseAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the database URL is not a URL; use mysql://user:password@host:port/database or postgres://user:password@host:port/database');
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  const engine = scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : undefined;
  if (engine === undefined) {
    throw new Error(`point-in-time recovery works on MariaDB/MySQL and PostgreSQL servers; ${scheme}: URLs have no binlog or WAL (use mysql://, mariadb://, postgres:// or postgresql://)`);
  }
  return {
    engine,
    host: parsed.hostname === '' ? '127.0.0.1' : parsed.hostname,
    port: parsed.port === '' ? (engine === 'mysql' ? 3306 : 5432) : Number(parsed.port),
    user: decodeURIComponent(parsed.username) || (engine === 'mysql' ? 'root' : 'postgres'),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
  };
}

/** The arguments that point a MariaDB client tool at `address` over TCP (never the machine's shared socket). */
export function mariadbConnectionArgs(address: DatabaseAddress): string[] {
  return ['--protocol=tcp', '--host', address.host, '--port', String(address.port), '--user', address.user];
}

/** The environment that carries the password to a MariaDB client tool. */
export function mariadbPasswordEnv(address: DatabaseAddress): Record<string, string> {
  return address.password === '' ? {} : { MYSQL_PWD: address.password };
}

/** The arguments that point a PostgreSQL client tool at `address`; `--no-password` so a missing one fails instead of prompting. */
export function postgresConnectionArgs(address: DatabaseAddress): string[] {
  return ['--host', address.host, '--port', String(address.port), '--username', address.user, '--no-password'];
}

/** The environment that carries the password to a PostgreSQL client tool. */
export function postgresPasswordEnv(address: DatabaseAddress): Record<string, string> {
  return address.password === '' ? {} : { PGPASSWORD: address.password };
}
