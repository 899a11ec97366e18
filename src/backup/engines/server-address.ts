import { redactUrl } from '../../config/config.js';

/** Where a MariaDB/MySQL or PostgreSQL database is, as its command-line tools want it. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Handed to tools through their environment, never on the command line (`ps` shows it). */
  readonly password: string;
  readonly database: string;
}

/**
 * Splits a `mysql://user:pass@host:port/db` or `postgres://…` URL into what the tools take
 * as separate options.
 *
 * @throws Error when the URL names no database: a dump of "the server" is not what we back up.
 */
export function serverAddress(url: string, defaults: { readonly port: number; readonly user: string }): ServerAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`database URL "${redactUrl(url)}" cannot be parsed; expected scheme://user:password@host:port/database`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new Error(`database URL "${redactUrl(url)}" names no database; add it as the path, e.g. …:${defaults.port}/seckill`);
  }
  return {
    // URL keeps IPv6 brackets, which the tools do not want.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? defaults.port : Number(parsed.port),
    user: parsed.username === '' ? defaults.user : decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
  };
}
