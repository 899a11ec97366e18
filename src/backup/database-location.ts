import { realpathSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { redactUrl } from '../config/config.js';
import { sqliteFileOf } from '../db/open-database.js';

/** Where a database lives, normalised so two spellings of one database compare equal. */
export type DatabaseLocation =
  | { readonly kind: 'sqlite'; readonly file: string }
  | { readonly kind: 'mysql' | 'postgres'; readonly host: string; readonly port: number; readonly database: string };

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);
const DEFAULT_PORT = { mysql: 3306, postgres: 5432 } as const;

/**
 * Parses a database URL into its location: the SQLite file (resolved, symbolic links
 * followed when it exists), or host, port and database name, with `localhost`, `127.0.0.1`
 * and `::1` taken as one host and default ports filled in.
 *
 * @throws Error for a URL of an unknown scheme.
 */
export function databaseLocation(url: string): DatabaseLocation {
  if (url.startsWith('sqlite:')) {
    const path = resolve(sqliteFileOf(url) ?? ':memory:');
    let file = path;
    try {
      file = realpathSync(path);
    } catch {
      // Not there (yet): compare the path as written.
    }
    return { kind: 'sqlite', file };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`database URL ${redactUrl(url)} cannot be parsed; use sqlite:<path>, mysql://… or postgres://…`);
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  const kind = scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : undefined;
  if (kind === undefined) throw new Error(`database URL ${redactUrl(url)} has an unknown scheme; use sqlite:<path>, mysql://… or postgres://…`);
  const host = parsed.hostname.toLowerCase();
  return {
    kind,
    host: LOOPBACK.has(host) || host === '' ? 'loopback' : host,
    port: parsed.port === '' ? DEFAULT_PORT[kind] : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
  };
}

/**
 * True when two URLs name the same database, whatever their user, password or spelling
 * (`mariadb://` and `mysql://`, `localhost` and `127.0.0.1`, a default port left out).
 *
 * @example
 * sameDatabase('mysql://root@localhost/shop', 'mariadb://app:pw@127.0.0.1:3306/shop'); // true
 */
export function sameDatabase(a: string, b: string): boolean {
  const x = databaseLocation(a);
  const y = databaseLocation(b);
  if (x.kind === 'sqlite' || y.kind === 'sqlite') return x.kind === y.kind && (x as { file: string }).file === (y as { file: string }).file;
  return x.kind === y.kind && x.host === y.host && x.port === y.port && x.database === y.database;
}

/** The database's name for the manifest: the SQLite file name or the database on the server (never credentials). */
export function databaseName(url: string): string {
  const location = databaseLocation(url);
  return location.kind === 'sqlite' ? basename(location.file) : location.database;
}

/** The URL for messages: credentials hidden. */
export function describeDatabase(url: string): string {
  return redactUrl(url);
}
