/**
 * The whole environment a database tool runs with. Nothing of the service's own is
 * inherited, so a stray `PGHOST`, `PGSERVICE`, `MYSQL_HOST` or `MYSQL_PWD` cannot point a
 * dump or a restore at another server; the password travels here rather than on the
 * command line, where any user's `ps` would show it.
 */

/** How long a tool waits for a server that does not answer before it gives up, in seconds. */
export const CONNECT_TIMEOUT_SECONDS = 10;

function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
}

/** For `pg_dump`, `pg_restore`, `pg_amcheck`: libpq reads the password from `PGPASSWORD`. */
export function postgresToolEnv(password: string): Record<string, string> {
  return {
    ...baseEnv(),
    PGCONNECT_TIMEOUT: String(CONNECT_TIMEOUT_SECONDS),
    ...(password === '' ? {} : { PGPASSWORD: password }),
  };
}

/** For `mariadb-dump`, `mariadb`, `mariabackup` (and MySQL's): the client library reads `MYSQL_PWD`. */
export function mysqlToolEnv(password: string): Record<string, string> {
  return { ...baseEnv(), ...(password === '' ? {} : { MYSQL_PWD: password }) };
}
