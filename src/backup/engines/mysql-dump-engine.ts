import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { isEmptyDatabase } from '../database-census.js';
import type { BackupEngine, DumpStream, ToolCheck } from '../backup-engine.js';
import { DumpPositionReader } from './binlog-position.js';
import { mysqlDumpCompatibility, parseMysqlToolVersion } from './dump-tool-compatibility.js';
import type { ProductVersion } from './dump-tool-compatibility.js';
import { serverAddress } from './server-address.js';
import type { ServerAddress } from './server-address.js';
import { mysqlServerFacts } from './server-facts.js';
import { CONNECT_TIMEOUT_SECONDS, mysqlToolEnv } from './tool-environment.js';
import { findTool, requireTool } from './tool-locator.js';
import { runTool, startTool, whenReadToEnd } from './tool-process.js';

const MYSQL_DEFAULTS = { port: 3306, user: 'root' } as const;

/**
 * Logical backups of MariaDB/MySQL with `mariadb-dump` (`mysqldump` for MySQL servers):
 * one `--single-transaction` snapshot (InnoDB's consistent read, no LOCK TABLES, so
 * purchases go on), the binlog position and GTID of that snapshot when the server writes a
 * binlog. Restores pipe the SQL into `mariadb` (`mysql`).
 *
 * Every tool runs with `--no-defaults` first, so no `my.cnf` on the host can point it at
 * another server, and with the password in `MYSQL_PWD`, never on the command line.
 */
export class MysqlDumpEngine implements BackupEngine {
  readonly engine = 'mysql' as const;
  readonly method = 'mariadb-dump' as const;
  readonly extension = '.sql';

  /** Refuses to be built on a host without any MariaDB/MySQL dump tool. */
  constructor() {
    requireTool(
      [
        { name: 'mariadb-dump', debianPackage: 'mariadb-client' },
        { name: 'mysqldump', debianPackage: 'mariadb-client' },
      ],
      'back up MariaDB/MySQL',
    );
  }

  async check(url: string): Promise<ToolCheck> {
    return (await this.#inspect(url)).check;
  }

  async dump(url: string): Promise<DumpStream> {
    const { check, address, tool, binlog } = await this.#inspect(url);
    if (!check.compatible) {
      throw new Error(`refusing to back up ${address.database} on ${address.host}:${address.port}: ${check.reason}`);
    }
    const args = [
      '--no-defaults',
      ...connectionArgs(address),
      '--single-transaction',
      '--skip-lock-tables',
      '--quick',
      '--routines',
      '--triggers',
      '--hex-blob',
      // Listing tablespaces needs the PROCESS privilege on MySQL 8, and we restore into one database.
      '--no-tablespaces',
      '--default-character-set=utf8mb4',
      ...positionArgs(tool.version, binlog),
      // As a bare name, not --databases: no CREATE DATABASE/USE, so it restores under any name.
      address.database,
    ];
    const running = startTool({ name: tool.name, command: tool.command, args, env: mysqlToolEnv(address.password), blockBufferedStdout: true });
    const reader = new DumpPositionReader();
    // Destroying `reader` destroys the tool's stdout, which kills the tool.
    pipeline(running.stdout, reader, () => undefined);
    const finished = whenReadToEnd(reader, running.exited, () => {
      const position = binlog ? reader.position() : undefined;
      return position === undefined ? {} : { position };
    });
    return { stream: reader, finished };
  }

  async restore(dump: Readable, url: string): Promise<void> {
    const address = serverAddress(url, MYSQL_DEFAULTS);
    if (!(await isEmptyDatabase(url))) {
      throw new Error(
        `refusing to restore into ${address.database} on ${address.host}:${address.port}: it already holds tables; restore into a new, empty database`,
      );
    }
    const server = await mysqlServerFacts(url);
    const client = requireTool(
      server.isMariaDb
        ? [{ name: 'mariadb', debianPackage: 'mariadb-client' }, { name: 'mysql', debianPackage: 'mariadb-client' }]
        : [{ name: 'mysql', debianPackage: 'mysql-client' }, { name: 'mariadb', debianPackage: 'mariadb-client' }],
      'restore into MariaDB/MySQL',
    );
    const args = [
      '--no-defaults',
      ...connectionArgs(address),
      // Only the client has it; a dump reaches the tool after check() has already connected.
      `--connect-timeout=${CONNECT_TIMEOUT_SECONDS}`,
      '--default-character-set=utf8mb4',
      '--batch',
      address.database,
    ];
    try {
      await runTool({ name: basename(client), command: client, args, env: mysqlToolEnv(address.password) }, dump);
    } catch (error) {
      throw new Error(
        `restore into ${address.database} on ${address.host}:${address.port} failed, and the database may hold part of the dump; drop and recreate it before retrying: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  async #inspect(url: string): Promise<{
    check: ToolCheck;
    address: ServerAddress;
    tool: { name: string; command: string; version: ProductVersion | undefined };
    binlog: boolean;
  }> {
    const address = serverAddress(url, MYSQL_DEFAULTS);
    const server = await mysqlServerFacts(url);
    // Each fork's own tool first; the other's is checked (and refused) rather than ignored.
    const names = server.isMariaDb ? ['mariadb-dump', 'mysqldump'] : ['mysqldump', 'mariadb-dump'];
    const command = names.map((name) => findTool(name)).find((found) => found !== undefined);
    if (command === undefined) {
      throw new Error(`cannot back up MariaDB/MySQL: ${names.join(' or ')} is not installed; install it with \`apt-get install mariadb-client\``);
    }
    const { stdout, stderr } = await runTool({ name: basename(command), command, args: ['--no-defaults', '--version'], env: mysqlToolEnv('') });
    const versionText = (stdout.trim() || stderr.trim()).split('\n')[0] ?? '';
    const version = parseMysqlToolVersion(versionText);
    const verdict = mysqlDumpCompatibility(versionText, server.version);
    const check: ToolCheck = {
      tool: { name: basename(command), version: version === undefined ? versionText : describeVersion(version) },
      server: { version: server.version },
      compatible: verdict.compatible,
      ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
    };
    return { check, address, tool: { name: basename(command), command, version }, binlog: server.binlog };
  }
}

/** TCP to the URL's host, whatever a local socket or `/etc/mysql/my.cnf` would say. */
function connectionArgs(address: ServerAddress): string[] {
  return ['--protocol=tcp', '-h', address.host, '-P', String(address.port), '-u', address.user];
}

/**
 * Options that write the snapshot's binlog position into the dump as comments. Without a
 * binlog there is no position, and asking for one would fail the dump.
 */
function positionArgs(tool: ProductVersion | undefined, binlog: boolean): string[] {
  if (tool?.product === 'mysql') {
    const atLeast = (major: number, minor: number, patch: number): boolean =>
      tool.major !== major ? tool.major > major : tool.minor !== minor ? tool.minor > minor : tool.patch >= patch;
    // COMMENTED records the GTID set without making the restore overwrite the target's GTID_PURGED.
    const gtid = atLeast(8, 0, 17) ? '--set-gtid-purged=COMMENTED' : '--set-gtid-purged=OFF';
    if (!binlog) return [gtid];
    return [atLeast(8, 0, 26) ? '--source-data=2' : '--master-data=2', gtid];
  }
  // MariaDB reads the snapshot's position from binlog_snapshot_file/_position, so
  // --master-data with --single-transaction needs no FLUSH TABLES WITH READ LOCK.
  return binlog ? ['--master-data=2', '--gtid'] : [];
}

function describeVersion(version: ProductVersion): string {
  return `${version.major}.${version.minor}.${version.patch}${version.product === 'mariadb' ? '-MariaDB' : ''}`;
}
