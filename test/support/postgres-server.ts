import { execFileSync } from 'node:child_process';
import { chownSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isRoot, postgresBinDir } from './binaries.js';
import { createDatabaseServer, type DatabaseServer } from './database-server.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { runSetupCommand, ServerProcess, ServerStartError } from './server-process.js';

/** Options for {@link startPostgres}. */
export interface PostgresOptions {
  /** More server settings passed as `-c key=value`, e.g. `{ wal_level: 'replica' }`. */
  readonly config?: Readonly<Record<string, string | number | boolean>>;
}

// PostgreSQL refuses to run as root; as root we run it as the Debian package's user.
const SERVER_USER = 'postgres';

function userIds(user: string): { uid: number; gid: number } {
  let entry: string;
  try {
    entry = execFileSync('getent', ['passwd', user], { encoding: 'utf8' });
  } catch {
    throw new Error(`user ${user} does not exist; PostgreSQL cannot run as root; install the postgresql package (it creates the user) or run the tests as a normal user`);
  }
  const fields = entry.trim().split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

async function postgresAnswers(port: number): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
  // A refused or reset connection surfaces here as well as from connect(); ignore the duplicate.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts a private PostgreSQL (the newest in `/usr/lib/postgresql/<version>/bin`) on a
 * free loopback port from an empty cluster in a temp folder: `initdb -A trust -U postgres`,
 * so `postgres` needs no password. As root it runs as the `postgres` user (through
 * `setpriv`, which execs, so `pid` is the postmaster); otherwise as the current user.
 *
 * @example
 * const postgres = await startPostgres();
 * after(() => postgres.stop());
 * const url = await postgres.createDatabase(); // postgres://postgres@127.0.0.1:PORT/seckill_test_…
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<DatabaseServer> {
  const bin = await postgresBinDir();
  const runAsUser = isRoot() ? SERVER_USER : undefined;
  if (runAsUser !== undefined && (statSync(tmpdir()).mode & 0o001) === 0) {
    throw new Error(
      `the temp folder ${tmpdir()} is not reachable by the ${runAsUser} user, which runs the test PostgreSQL; set TMPDIR=/tmp`,
    );
  }
  const dir = createScratchDir('postgres');
  // Only the variables the server needs: an exported PGPASSWORD, PGHOST or PGPORT must not leak in.
  const env = { PATH: process.env.PATH, HOME: dir, LANG: 'C.UTF-8' };
  try {
    if (runAsUser !== undefined) {
      const { uid, gid } = userIds(runAsUser);
      chownSync(dir, uid, gid);
    }
    await runSetupCommand({
      name: 'initdb',
      command: join(bin, 'initdb'),
      args: [
        '-D', join(dir, 'data'),
        '-A', 'trust',
        '-U', 'postgres',
        '-E', 'UTF8',
        '--locale=C.UTF-8',
        // The cluster is thrown away after the run; the server itself keeps fsync on.
        '--no-sync',
        '--no-instructions',
      ],
      logFile: join(dir, 'initdb.log'),
      runAsUser,
      env,
      cwd: dir,
      scratchDir: dir,
    });
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const settings: Record<string, string | number | boolean> = {
        listen_addresses: '127.0.0.1',
        port,
        unix_socket_directories: dir,
        shared_buffers: '128MB',
        max_connections: 200,
        ...options.config,
      };
      const server = await ServerProcess.start({
        name: `postgres on port ${port}`,
        command: join(bin, 'postgres'),
        args: ['-D', join(dir, 'data'), ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${String(value)}`])],
        logFile: join(dir, 'postgres.log'),
        runAsUser,
        env,
        cwd: dir,
        scratchDir: dir,
      });
      try {
        await server.waitUntilReady(() => postgresAnswers(port), { timeoutMs: 60_000 });
      } catch (error) {
        await server.stop({ signal: 'SIGKILL' });
        if (error instanceof ServerStartError && error.addressInUse && attempt < 3) continue;
        throw error;
      }
      let stopped = false;
      return createDatabaseServer(`postgres://postgres@127.0.0.1:${port}/postgres`, {
        pid: server.pid,
        kill: (signal) => server.signal(signal),
        async stop() {
          if (stopped) return;
          stopped = true;
          // SIGINT is the "fast" shutdown: SIGTERM ("smart") would wait for every client
          // to disconnect, and a test that leaks a pool would make it hang.
          await server.stop({ signal: 'SIGINT' });
          await removeScratchDir(dir);
        },
      });
    }
  } catch (error) {
    await removeScratchDir(dir);
    throw error;
  }
}
