import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { WriterBalancer, haproxyCommand } from '../../src/ha/mariadb-haproxy.js';
import { ensureBinary, isRoot } from './binaries.js';
import { uniqueDatabaseName } from './database-server.js';
import { freePort } from './free-port.js';
import { myCnf, mysqlAnswers } from './mariadb-server.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { runSetupCommand, ServerProcess, ServerStartError } from './server-process.js';

/** The shipped template of the database balancer; the suite renders what an operator deploys. */
export const MARIADB_WRITER_TEMPLATE = fileURLToPath(new URL('../../../deploy/haproxy/mariadb-writer.cfg.template', import.meta.url));

/** Replication account the replicas connect with. */
const REPL_USER = 'repl';
const REPL_PASSWORD = 'repl-secret';

/**
 * Settings both servers share, so that either can be primary or replica: GTID binlogs
 * with log_slave_updates (a promoted replica has every transaction in its own binlog),
 * strict GTIDs, a parallel applier, and semi-sync AFTER_SYNC (a commit returns once a
 * replica received it). Semi-sync *master* mode is switched on only on the current
 * primary: on a replica it would stall the applier for the whole semi-sync timeout.
 */
function replicationConfig(serverId: number, primary: boolean): Record<string, string | number | boolean> {
  return {
    'server-id': serverId,
    'log-bin': 'mariadb-bin',
    'relay-log': 'relay-bin',
    binlog_format: 'ROW',
    log_slave_updates: true,
    gtid_strict_mode: 1,
    sync_binlog: 1,
    slave_parallel_threads: 4,
    // A hung primary is noticed by the replica within seconds, not the default minute.
    slave_net_timeout: 5,
    rpl_semi_sync_slave_enabled: 1,
    rpl_semi_sync_master_wait_point: 'AFTER_SYNC',
    // A primary left without a replica waits at most this long per commit, once, then
    // goes on asynchronously until a replica is back; with no replica connected at all
    // there is nobody to wait for.
    rpl_semi_sync_master_timeout: 2000,
    rpl_semi_sync_master_wait_no_slave: 0,
    rpl_semi_sync_master_enabled: primary ? 1 : 0,
    read_only: primary ? 0 : 1,
    innodb_buffer_pool_size: '64M',
  };
}

/** Runs SQL as root on a loopback port; closes the connection afterwards. */
export async function rootQuery<T extends RowDataPacket>(port: number, sql: string, params: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 10_000, multipleStatements: true });
  try {
    const [rows] = await connection.query<T[]>(sql, params);
    return rows;
  } finally {
    connection.destroy();
  }
}

/** One private mariadbd of the pair, whose process can be crashed and started again on the same data. */
export class MariaDbInstance {
  #process: ServerProcess | undefined;
  readonly #cnf: string;
  readonly #mariadbd: string;

  constructor(
    /** Its server name in HAProxy's writer backend. */
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    mariadbd: string,
  ) {
    this.#cnf = join(dir, 'my.cnf');
    this.#mariadbd = mariadbd;
  }

  /** `mysql://root@127.0.0.1:PORT/`: this server directly, bypassing HAProxy. */
  get rootUrl(): string {
    return `mysql://root@127.0.0.1:${this.port}/`;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  get running(): boolean {
    return this.#process?.running ?? false;
  }

  /** Writes my.cnf and initialises an empty data folder. */
  async install(config: Record<string, string | number | boolean>): Promise<void> {
    mkdirSync(join(this.dir, 'tmp'), { recursive: true });
    writeFileSync(this.#cnf, myCnf(this.dir, this.port, { config }));
    await runSetupCommand({
      name: 'mariadb-install-db',
      command: await ensureBinary('mariadb-install-db', 'mariadb-server'),
      args: [`--defaults-file=${this.#cnf}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve', ...(isRoot() ? ['--user=root'] : [])],
      logFile: join(this.dir, 'install-db.log'),
      env: { PATH: process.env.PATH, HOME: this.dir },
      cwd: this.dir,
      scratchDir: this.dir,
    });
  }

  /**
   * Starts mariadbd on its data folder; `extraArgs` follow `--defaults-file` (which must
   * come first, or the system configuration is read too).
   */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    if (this.running) throw new Error(`${this.name} already runs (pid ${this.pid})`);
    const server = await ServerProcess.start({
      name: `mariadbd ${this.name} on port ${this.port}`,
      command: this.#mariadbd,
      args: [`--defaults-file=${this.#cnf}`, ...extraArgs],
      logFile: join(this.dir, 'mariadbd.out'),
      extraLogFiles: [join(this.dir, 'mariadb.err')],
      env: { PATH: process.env.PATH, HOME: this.dir },
      cwd: this.dir,
      scratchDir: this.dir,
    });
    this.#process = server;
    try {
      await server.waitUntilReady(() => mysqlAnswers(this.port), { timeoutMs: 60_000 });
    } catch (error) {
      await server.stop({ signal: 'SIGKILL' });
      throw error;
    }
  }

  /** Sends a signal (SIGKILL to crash it, SIGSTOP/SIGCONT to hang it). */
  signal(signal: NodeJS.Signals): void {
    if (!this.#process) throw new Error(`${this.name} does not run`);
    this.#process.signal(signal);
  }

  /** kill -9, and waits until the process is gone (its data folder stays). */
  async crash(): Promise<void> {
    await this.#process?.stop({ signal: 'SIGKILL' });
  }

  /** Runs SQL as root on this server directly. */
  query<T extends RowDataPacket>(sql: string, params: unknown[] = []): Promise<T[]> {
    return rootQuery<T>(this.port, sql, params);
  }

  /** `SHOW SLAVE STATUS` (undefined on a server that replicates from nobody). */
  async slaveStatus(): Promise<Record<string, unknown> | undefined> {
    return (await this.query('SHOW SLAVE STATUS'))[0];
  }

  /** Makes this server replicate from `primary` by GTID and waits until it is connected with semi-sync. */
  async replicateFrom(primary: MariaDbInstance, position: 'slave_pos' | 'current_pos' = 'slave_pos'): Promise<void> {
    await this.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?, MASTER_USE_GTID=${position}, MASTER_CONNECT_RETRY=1`,
      [primary.port, REPL_USER, REPL_PASSWORD],
    );
    await this.query('START SLAVE');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = await this.slaveStatus();
      const clients = await primary.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'");
      if (status?.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes' && Number(clients[0]?.Value) >= 1) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not start replicating from ${primary.name} in 20 s: ${JSON.stringify(status)}; semi-sync clients ${JSON.stringify(clients)}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    await this.#process?.stop();
  }
}

/** Waits until `replica` has applied everything `primary` has written (by GTID). */
export async function waitCaughtUp(replica: MariaDbInstance, primary: MariaDbInstance, timeoutMs = 20_000): Promise<void> {
  const [{ pos }] = await primary.query<RowDataPacket>('SELECT @@gtid_binlog_pos AS pos');
  const [{ done }] = await replica.query<RowDataPacket>('SELECT MASTER_GTID_WAIT(?, ?) AS done', [pos, timeoutMs / 1000]);
  if (Number(done) !== 0) throw new Error(`${replica.name} did not apply ${String(pos)} of ${primary.name} within ${timeoutMs} ms`);
}

/** A MariaDB primary, a GTID replica and HAProxy's `writer` backend in front of them. */
export interface ReplicatedMariaDb {
  /** The servers in HAProxy order: `db1` starts as the primary, `db2` as its replica. */
  readonly servers: readonly [MariaDbInstance, MariaDbInstance];
  /** The HAProxy runtime API socket. */
  readonly socket: string;
  /** HAProxy's writer port: the only address the application is given. */
  readonly writerPort: number;
  /** The runtime API as `seckill db promote` drives it. */
  readonly balancer: WriterBalancer;
  /** Creates a database on the primary, waits until the replica has it, returns its URL through HAProxy. */
  createDatabase(prefix?: string): Promise<string>;
  /** SECKILL_* settings that tell `seckill db promote|status` about these servers and this HAProxy. */
  readonly promoteEnv: Record<string, string>;
  /**
   * Restarts a crashed former primary as a replica of `primary`: `--init-rpl-role=SLAVE`
   * truncates the transactions it wrote but no replica acknowledged, then it replicates by GTID.
   */
  rejoinAsReplica(instance: MariaDbInstance, primary: MariaDbInstance): Promise<void>;
  stop(): Promise<void>;
}

/** Renders the writer template: plain text substitutions, the first server active, the others in MAINT. */
export function renderWriterConfig(template: string, values: { frontendBind: string; statsSocket: string; servers: readonly { name: string; port: number }[] }): string {
  const servers = values.servers.map((s, i) => `    server ${s.name} 127.0.0.1:${s.port} check${i === 0 ? '' : ' disabled'}`).join('\n');
  return template
    .replaceAll('{{FRONTEND_BIND}}', values.frontendBind)
    .replaceAll('{{STATS_SOCKET}}', values.statsSocket)
    .replaceAll('{{SERVERS}}', servers);
}

async function startWriterHaproxy(servers: readonly MariaDbInstance[]): Promise<{ port: number; dir: string; socket: string; process: ServerProcess }> {
  const command = await ensureBinary('haproxy', 'haproxy');
  for (let attempt = 1; ; attempt++) {
    const dir = createScratchDir('haproxy-mariadb');
    const port = await freePort();
    const socket = join(dir, 'haproxy.sock');
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(config, renderWriterConfig(readFileSync(MARIADB_WRITER_TEMPLATE, 'utf8'), { frontendBind: `127.0.0.1:${port}`, statsSocket: socket, servers }));
    const proxy = await ServerProcess.start({
      name: `haproxy (mariadb writer) on port ${port}`,
      command,
      args: ['-f', config, '-db'],
      logFile: join(dir, 'haproxy.out'),
      env: { PATH: process.env.PATH },
      cwd: dir,
      scratchDir: dir,
    });
    try {
      await proxy.waitUntilReady(async () => (await haproxyCommand(socket, 'show info')).includes('Pid:'), { timeoutMs: 10_000 });
      return { port, dir, socket, process: proxy };
    } catch (error) {
      await proxy.stop({ signal: 'SIGKILL' });
      await removeScratchDir(dir);
      const portTaken = error instanceof ServerStartError && (error.addressInUse || /cannot bind socket/.test(error.message));
      if (!portTaken || attempt >= 3) throw error;
    }
  }
}

/**
 * Starts a MariaDB primary (`db1`) and a semi-sync GTID replica (`db2`), each a private
 * mariadbd on a free loopback port in its own temp folder, and HAProxy in TCP mode with
 * the `writer` backend (db1 active, db2 in MAINT) rendered from
 * `deploy/haproxy/mariadb-writer.cfg.template`. Never touches a machine-wide MariaDB.
 * Resolves once the replica is connected with semi-sync and HAProxy sees db1 UP (~3 s).
 */
export async function startReplicatedMariaDb(): Promise<ReplicatedMariaDb> {
  const mariadbd = await ensureBinary('mariadbd', 'mariadb-server');
  const instances: MariaDbInstance[] = [];
  let haproxy: Awaited<ReturnType<typeof startWriterHaproxy>> | undefined;
  const stop = async (): Promise<void> => {
    await haproxy?.process.stop();
    if (haproxy) await removeScratchDir(haproxy.dir);
    for (const instance of instances) {
      await instance.stop().catch(() => undefined);
      await removeScratchDir(instance.dir);
    }
  };
  try {
    for (const name of ['db1', 'db2']) instances.push(new MariaDbInstance(name, await freePort(), createScratchDir(`mariadb-${name}`), mariadbd));
    const [primary, replica] = instances as [MariaDbInstance, MariaDbInstance];
    // Each install has its own tmpdir, so they can run in parallel.
    await Promise.all([primary.install(replicationConfig(1, true)), replica.install(replicationConfig(2, false))]);
    await Promise.all([primary.start(), replica.start()]);
    // Whatever the install wrote is not history the pair shares: both start from an empty GTID state.
    await replica.query("RESET MASTER; SET GLOBAL gtid_slave_pos = ''");
    await primary.query(`RESET MASTER; CREATE USER '${REPL_USER}'@'%' IDENTIFIED BY '${REPL_PASSWORD}'; GRANT REPLICATION SLAVE ON *.* TO '${REPL_USER}'@'%'`);
    await replica.replicateFrom(primary);
    haproxy = await startWriterHaproxy(instances);
    const balancer = new WriterBalancer(haproxy.socket, 'writer');
    for (let i = 0; ; i++) {
      const states = await balancer.servers();
      if (states.find((s) => s.name === 'db1')?.status === 'UP') break;
      if (i > 200) throw new Error(`HAProxy does not see db1 UP: ${JSON.stringify(states)}`);
      await sleep(25);
    }
    const writerPort = haproxy.port;
    return {
      servers: [primary, replica],
      socket: haproxy.socket,
      writerPort,
      balancer,
      promoteEnv: {
        SECKILL_MARIADB_SERVERS: instances.map((i) => `${i.name}=${i.rootUrl}`).join(','),
        SECKILL_MARIADB_HAPROXY_SOCKET: haproxy.socket,
        SECKILL_MARIADB_HAPROXY_BACKEND: 'writer',
      },
      async createDatabase(prefix = 'seckill_chaos') {
        const name = uniqueDatabaseName(prefix);
        await primary.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
        await waitCaughtUp(replica, primary);
        return `mysql://root@127.0.0.1:${writerPort}/${name}`;
      },
      async rejoinAsReplica(instance, newPrimary) {
        await instance.start(['--init-rpl-role=SLAVE']);
        // It never replicated before: its own binlog is where it stands.
        await instance.query('SET GLOBAL read_only = 1; SET GLOBAL rpl_semi_sync_master_enabled = 0; SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos');
        await instance.replicateFrom(newPrimary);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
