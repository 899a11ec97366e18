import { createConnection } from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConfigError, redactUrl } from '../config/config.js';

/** One MariaDB server a promotion may touch: its HAProxy server name and an admin URL. */
export interface MariaDbServerSetting {
  readonly name: string;
  readonly url: string;
}

/**
 * Reads `mariadbServers` (`db1=mysql://…,db2=mysql://…`).
 * @throws {ConfigError} naming what is wrong, when the list is empty or malformed.
 */
export function parseMariaDbServers(text: string): MariaDbServerSetting[] {
  const servers: MariaDbServerSetting[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq > 0 ? part.slice(0, eq).trim() : '';
    const url = eq > 0 ? part.slice(eq + 1).trim() : '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || !/^(mysql|mariadb):\/\/[^/]+/.test(url)) {
      throw new ConfigError(
        `invalid configuration SECKILL_MARIADB_SERVERS entry ${JSON.stringify(redactUrl(part))}: expected name=mysql://user:password@host:port/ (name = the server's name in HAProxy's writer backend)`,
      );
    }
    if (servers.some((s) => s.name === name)) throw new ConfigError(`invalid configuration SECKILL_MARIADB_SERVERS: the name ${name} appears twice`);
    servers.push({ name, url });
  }
  if (servers.length < 2) {
    throw new ConfigError('SECKILL_MARIADB_SERVERS must name at least two MariaDB servers (the primary and a replica), e.g. db1=mysql://root@10.0.0.11:3306/,db2=mysql://root@10.0.0.12:3306/');
  }
  return servers;
}

/** How long a server may take to accept a connection, and to answer one statement. */
const CONNECT_TIMEOUT_MS = 2000;
const QUERY_TIMEOUT_MS = 5000;

/** Opens an admin connection to one server (not through HAProxy). */
export async function connectMariaDb(server: MariaDbServerSetting): Promise<Connection> {
  const url = new URL(server.url.replace(/^mariadb:/, 'mysql:'));
  return createConnection({
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
}

/** Runs one statement with a bound on how long it may take (a hung server must not hang us). */
export async function queryRows(connection: Connection, sql: string, params: unknown[] = [], timeoutMs = QUERY_TIMEOUT_MS): Promise<RowDataPacket[]> {
  const [rows] = await connection.query<RowDataPacket[]>({ sql, timeout: timeoutMs }, params);
  return rows;
}

/** What a server's `SHOW SLAVE STATUS` says, when it replicates. */
export interface ReplicationState {
  readonly source: string;
  readonly ioRunning: string;
  readonly sqlRunning: string;
  /** What the IO thread has received (the relay log), `Gtid_IO_Pos`. */
  readonly receivedPos: string;
  readonly secondsBehind: number | null;
  readonly lastError: string;
}

/** The role and positions of one server, as `seckill db status` shows them. */
export interface MariaDbServerReport {
  readonly name: string;
  /** The URL without its password. */
  readonly url: string;
  readonly reachable: boolean;
  readonly error?: string;
  /** `primary`: writable and replicating from nobody; `replica`: has a replication source; `read-only`: neither. */
  readonly role: 'primary' | 'replica' | 'read-only' | 'unreachable';
  readonly readOnly?: boolean;
  readonly version?: string;
  /** Transactions in its own binlog. */
  readonly binlogPos?: string;
  /** Transactions it has applied as a replica. */
  readonly slavePos?: string;
  readonly replication?: ReplicationState;
  readonly semiSyncMaster?: boolean;
  /** Replicas connected with semi-sync (on a primary). */
  readonly semiSyncClients?: number;
}

/** Connects to a server and reports its role and GTID positions; an unreachable server is a report too. */
export async function inspectMariaDb(server: MariaDbServerSetting): Promise<MariaDbServerReport> {
  const base = { name: server.name, url: redactUrl(server.url) };
  let connection: Connection | undefined;
  try {
    connection = await connectMariaDb(server);
    const [vars] = await queryRows(
      connection,
      'SELECT @@read_only AS readOnly, @@version AS version, @@gtid_binlog_pos AS binlogPos, @@gtid_slave_pos AS slavePos, @@rpl_semi_sync_master_enabled AS semiSyncMaster',
    );
    const [slave] = await queryRows(connection, 'SHOW SLAVE STATUS');
    const clients = await queryRows(connection, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'");
    const replication: ReplicationState | undefined = slave
      ? {
          source: `${String(slave.Master_Host)}:${String(slave.Master_Port)}`,
          ioRunning: String(slave.Slave_IO_Running),
          sqlRunning: String(slave.Slave_SQL_Running),
          receivedPos: String(slave.Gtid_IO_Pos ?? ''),
          secondsBehind: slave.Seconds_Behind_Master === null ? null : Number(slave.Seconds_Behind_Master),
          lastError: String(slave.Last_IO_Error || slave.Last_SQL_Error || ''),
        }
      : undefined;
    const readOnly = Number(vars.readOnly) === 1;
    return {
      ...base,
      reachable: true,
      role: replication ? 'replica' : readOnly ? 'read-only' : 'primary',
      readOnly,
      version: String(vars.version),
      binlogPos: String(vars.binlogPos ?? ''),
      slavePos: String(vars.slavePos ?? ''),
      replication,
      semiSyncMaster: Number(vars.semiSyncMaster) === 1,
      semiSyncClients: Number(clients[0]?.Value ?? 0),
    };
  } catch (error) {
    return { ...base, reachable: false, role: 'unreachable', error: (error as Error).message };
  } finally {
    connection?.destroy();
  }
}
