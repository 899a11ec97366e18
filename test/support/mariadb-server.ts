import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { ensureBinary, isRoot } from './binaries.js';
import { createDatabaseServer, type DatabaseServer } from './database-server.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { runSetupCommand, ServerProcess, ServerStartError } from './server-process.js';

/** Options for {@link startMariaDb}. */
export interface MariaDbOptions {
  /**
   * More `[mariadbd]` settings, e.g. `{ 'log-bin': 'mariadb-bin', 'server-id': 1 }`
   * for binlog tests; `true` writes the bare option name.
   */
  readonly config?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The `my.cnf` of a private server in `dir` listening on `port`: only loopback, its own
 * tmpdir, and a high `max_connect_errors`, plus `options.config`. Shared with the
 * replication harness, whose servers differ only in their extra settings.
 */
export function myCnf(dir: string, port: number, options: MariaDbOptions): string {
  const settings: Record<string, string | number | boolean> = {
    datadir: join(dir, 'data'),
    // Parallel installs collide in a shared temp folder; each instance gets its own.
    tmpdir: join(dir, 'tmp'),
    socket: join(dir, 'mariadb.sock'),
    'pid-file': join(dir, 'mariadb.pid'),
    'log-error': join(dir, 'mariadb.err'),
    port,
    'bind-address': '127.0.0.1',
    'skip-name-resolve': true,
    // Readiness probes and killed clients count as connect errors; never block the host.
    max_connect_errors: 1_000_000,
    max_connections: 300,
    'character-set-server': 'utf8mb4',
    'collation-server': 'utf8mb4_unicode_ci',
    innodb_buffer_pool_size: '256M',
    innodb_flush_log_at_trx_commit: 1,
    // mariadbd refuses to run as root unless told to; the data folder is ours anyway.
    ...(isRoot() ? { user: 'root' } : {}),
    ...options.config,
  };
  const lines = Object.entries(settings)
    .filter(([, value]) => value !== false)
    .map(([key, value]) => (value === true ? key : `${key}=${String(value)}`));
  return `[mariadbd]\n${lines.join('\n')}\n`;
}

/** True when a server on the loopback `port` answers a ping as `root` (the readiness probe). */
export async function mysqlAnswers(port: number): Promise<boolean> {
  const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 });
  try {
    await connection.ping();
    return true;
  } finally {
    connection.destroy();
  }
}

/**
 * Starts a private MariaDB on a free loopback port, from an empty data folder in a temp
 * folder (install + start take about a second). `root` has no password over TCP.
 * Only our own `my.cnf` is read, never `/etc/mysql`: `--defaults-file` comes first.
 *
 * @example
 * const mariadb = await startMariaDb();
 * after(() => mariadb.stop());
 * const url = await mariadb.createDatabase(); // mysql://root@127.0.0.1:PORT/seckill_test_…
 */
export async function startMariaDb(options: MariaDbOptions = {}): Promise<DatabaseServer> {
  const [mariadbd, installDb] = await Promise.all([
    ensureBinary('mariadbd', 'mariadb-server'),
    ensureBinary('mariadb-install-db', 'mariadb-server'),
  ]);
  const dir = createScratchDir('mariadb');
  const cnf = join(dir, 'my.cnf');
  const env = { PATH: process.env.PATH, HOME: dir };
  try {
    mkdirSync(join(dir, 'tmp'));
    let port = await freePort();
    writeFileSync(cnf, myCnf(dir, port, options));
    await runSetupCommand({
      name: 'mariadb-install-db',
      command: installDb,
      args: [
        `--defaults-file=${cnf}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        ...(isRoot() ? ['--user=root'] : []),
      ],
      logFile: join(dir, 'install-db.log'),
      env,
      cwd: dir,
      scratchDir: dir,
    });
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) {
        port = await freePort();
        writeFileSync(cnf, myCnf(dir, port, options));
      }
      const server = await ServerProcess.start({
        name: `mariadbd on port ${port}`,
        command: mariadbd,
        args: [`--defaults-file=${cnf}`],
        logFile: join(dir, 'mariadbd.out'),
        extraLogFiles: [join(dir, 'mariadb.err')],
        env,
        cwd: dir,
        scratchDir: dir,
      });
      try {
        await server.waitUntilReady(() => mysqlAnswers(port), { timeoutMs: 60_000 });
      } catch (error) {
        await server.stop({ signal: 'SIGKILL' });
        if (error instanceof ServerStartError && error.addressInUse && attempt < 3) continue;
        throw error;
      }
      let stopped = false;
      return createDatabaseServer(`mysql://root@127.0.0.1:${port}/`, {
        pid: server.pid,
        kill: (signal) => server.signal(signal),
        async stop() {
          if (stopped) return;
          stopped = true;
          await server.stop();
          await removeScratchDir(dir);
        },
      });
    }
  } catch (error) {
    await removeScratchDir(dir);
    throw error;
  }
}
