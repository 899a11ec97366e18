import { join } from 'node:path';
import { createDatabaseServer, type DatabaseServer } from './database-server.js';
import { startMariaDb } from './mariadb-server.js';
import { startPostgres } from './postgres-server.js';
import { createScratchDir } from './scratch-dir.js';

/**
 * Environment variables through which `test/run.ts` hands the servers it started to
 * every test file (root URLs). Without them a test file starts its own servers.
 */
export const SHARED_SERVER_ENV = {
  mysql: 'SECKILL_TEST_MARIADB_URL',
  postgres: 'SECKILL_TEST_POSTGRES_URL',
} as const;

const shared: Partial<Record<'mysql' | 'postgres', Promise<DatabaseServer>>> = {};

// Tests share the server, so none of them may stop it; the exit hooks of the harness
// kill a server this process started when the process ends.
function sharedView(server: DatabaseServer): DatabaseServer {
  return createDatabaseServer(server.rootUrl);
}

function sharedServer(kind: 'mysql' | 'postgres', start: () => Promise<DatabaseServer>): Promise<DatabaseServer> {
  const fromRunner = process.env[SHARED_SERVER_ENV[kind]];
  shared[kind] ??= fromRunner !== undefined && fromRunner !== '' ? Promise.resolve(createDatabaseServer(fromRunner)) : start().then(sharedView);
  return shared[kind];
}

/**
 * The MariaDB every test in this run shares: the one `npm test` started, or (when a test
 * file runs alone) one started on first use and killed when this process exits. Create
 * a database per test with `createDatabase()`; `stop()` does nothing and `kill()` throws,
 * because other tests use it — start a private one with `startMariaDb()` to crash it.
 */
export function sharedMariaDb(): Promise<DatabaseServer> {
  return sharedServer('mysql', () => startMariaDb());
}

/** The PostgreSQL every test in this run shares; see {@link sharedMariaDb}. */
export function sharedPostgres(): Promise<DatabaseServer> {
  return sharedServer('postgres', () => startPostgres());
}

/**
 * A URL of a new, empty database for one test: `sqlite:<new temp folder>/seckill.db`
 * (the folder is removed when the process exits), or a fresh database on the shared
 * MariaDB / PostgreSQL.
 *
 * @example
 * for (const kind of ['sqlite', 'mysql', 'postgres'] as const) {
 *   it(`${kind}: keeps one order per user`, async () => {
 *     const url = await freshDatabaseUrl(kind);
 *     // …open the app's database on url, migrate, test
 *   });
 * }
 */
export async function freshDatabaseUrl(kind: 'sqlite' | 'mysql' | 'postgres'): Promise<string> {
  switch (kind) {
    case 'sqlite':
      return `sqlite:${join(createScratchDir('sqlite'), 'seckill.db')}`;
    case 'mysql':
      return (await sharedMariaDb()).createDatabase();
    case 'postgres':
      return (await sharedPostgres()).createDatabase();
  }
}
