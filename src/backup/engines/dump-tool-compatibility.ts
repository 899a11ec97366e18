/**
 * Which dump tool can faithfully copy which server. The failure this guards against: a
 * client older than the server (or of the other fork) that dumps without an error and
 * leaves out what it does not understand, so the backup looks fine and restores empty.
 */

/** A version as MariaDB, MySQL or PostgreSQL print it, reduced to what the rules compare. */
export interface ProductVersion {
  readonly product: 'mariadb' | 'mysql' | 'postgres';
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Whether a tool may dump a server, and if not, why and what to install. */
export interface CompatibilityVerdict {
  readonly compatible: boolean;
  readonly reason?: string;
}

/**
 * Reads the version a MariaDB/MySQL client tool prints with `--version`:
 * `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)`,
 * `mariadb-dump from 11.4.2-MariaDB, client 10.19 for Linux (x86_64)`,
 * `mariabackup based on MariaDB server 10.11.19-MariaDB …`,
 * `mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)` (MySQL 5.7),
 * `mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)`.
 */
export function parseMysqlToolVersion(text: string): ProductVersion | undefined {
  // The release follows "Distrib", "from" or "server"; "Ver" is the client protocol
  // version on MariaDB and MySQL 5.7, and the release only on MySQL 8.
  const release = /\b(?:Distrib|from|server)\s+(\d+)\.(\d+)\.(\d+)/i.exec(text) ?? /\bVer\s+(\d+)\.(\d+)\.(\d+)/i.exec(text);
  if (release === null) return undefined;
  return {
    product: /mariadb/i.test(text) ? 'mariadb' : 'mysql',
    major: Number(release[1]),
    minor: Number(release[2]),
    patch: Number(release[3]),
  };
}

/**
 * Reads `SELECT VERSION()`: `10.11.19-MariaDB-0+deb12u1-log`, `8.0.36`, `8.0.36-0ubuntu0.22.04.1`,
 * or the handshake form `5.5.5-10.11.19-MariaDB`.
 */
export function parseMysqlServerVersion(text: string): ProductVersion | undefined {
  const release = /^(?:5\.5\.5-)?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (release === null) return undefined;
  return {
    product: /mariadb/i.test(text) ? 'mariadb' : 'mysql',
    major: Number(release[1]),
    minor: Number(release[2]),
    patch: Number(release[3]),
  };
}

/**
 * Whether `mariadb-dump`/`mysqldump` (its `--version` text) can dump a server (its
 * `VERSION()`): a MariaDB tool of the server's major.minor series or newer for MariaDB; a
 * MySQL tool whose major is at least the server's for MySQL. The forks are not mixed: each
 * one's dump tool misses or misreads the other's newer features.
 *
 * @example
 * mysqlDumpCompatibility('mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)', '8.0.36').compatible; // false
 */
export function mysqlDumpCompatibility(toolVersion: string, serverVersion: string): CompatibilityVerdict {
  const tool = parseMysqlToolVersion(toolVersion);
  const server = parseMysqlServerVersion(serverVersion);
  if (tool === undefined || server === undefined) {
    return unreadable(tool === undefined ? `the dump tool's version "${toolVersion.trim()}"` : `the server version "${serverVersion}"`);
  }
  const toolName = `${tool.product === 'mariadb' ? 'MariaDB' : 'MySQL'} dump tool ${dotted(tool)}`;
  if (server.product === 'mariadb') {
    if (tool.product !== 'mariadb') {
      return refuse(`the ${toolName} cannot faithfully dump MariaDB ${dotted(server)}; install MariaDB's client: apt-get install mariadb-client`);
    }
    if (compareSeries(tool, server) < 0) {
      return refuse(
        `the ${toolName} is older than the MariaDB ${series(server)} server; install mariadb-client ${series(server)} or newer (MariaDB's own repository for that series)`,
      );
    }
    return { compatible: true };
  }
  if (tool.product !== 'mysql') {
    return refuse(
      `the ${toolName} cannot faithfully dump MySQL ${dotted(server)}; install MySQL's own client ${server.major}.x (package mysql-client or mysql-community-client from MySQL's repository)`,
    );
  }
  if (tool.major < server.major) {
    return refuse(`the ${toolName} is older than the MySQL ${dotted(server)} server; install MySQL's client ${server.major}.x or newer`);
  }
  return { compatible: true };
}

/**
 * Whether `mariabackup` (its `--version` text) can copy a server's data files: only a
 * MariaDB server of the tool's own major.minor series, because InnoDB's redo log and page
 * formats change between series.
 */
export function mariabackupCompatibility(toolVersion: string, serverVersion: string): CompatibilityVerdict {
  const tool = parseMysqlToolVersion(toolVersion);
  const server = parseMysqlServerVersion(serverVersion);
  if (tool === undefined || server === undefined) {
    return unreadable(tool === undefined ? `mariabackup's version "${toolVersion.trim()}"` : `the server version "${serverVersion}"`);
  }
  if (server.product !== 'mariadb') {
    return refuse(`mariabackup copies only MariaDB data files, and the server is MySQL ${dotted(server)}; use the logical method (backupMysqlMethod: logical)`);
  }
  if (compareSeries(tool, server) !== 0) {
    return refuse(
      `mariabackup ${dotted(tool)} cannot copy the data files of a MariaDB ${series(server)} server; install mariadb-backup of the server's series ${series(server)} (apt-get install mariadb-backup from that series' repository), or use the logical method`,
    );
  }
  return { compatible: true };
}

/**
 * Reads `pg_dump --version` (`pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)`,
 * `pg_dump (PostgreSQL) 9.6.24`).
 */
export function parsePostgresToolVersion(text: string): ProductVersion | undefined {
  const release = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (release === null) return undefined;
  return postgresVersion(Number(release[1]), Number(release[2] ?? 0), Number(release[3] ?? 0));
}

/** Reads `server_version_num`: 150019 is 15.19, 90624 is 9.6.24. */
export function parsePostgresServerVersionNum(versionNum: number): ProductVersion {
  return versionNum >= 100_000
    ? postgresVersion(Math.floor(versionNum / 10_000), versionNum % 10_000, 0)
    : postgresVersion(Math.floor(versionNum / 10_000), Math.floor(versionNum / 100) % 100, versionNum % 100);
}

/** The oldest server pg_dump 15 and later still dump. */
const OLDEST_DUMPABLE_POSTGRES = { major: 9, minor: 2 };

/**
 * Whether `pg_dump` can dump a server: pg_dump refuses servers of a newer major than its
 * own and dumps every older one back to 9.2.
 *
 * @example
 * postgresDumpCompatibility('pg_dump (PostgreSQL) 15.19', 160004).reason; // '… install postgresql-client-16 …'
 */
export function postgresDumpCompatibility(toolVersion: string, serverVersionNum: number): CompatibilityVerdict {
  const tool = parsePostgresToolVersion(toolVersion);
  if (tool === undefined) return unreadable(`pg_dump's version "${toolVersion.trim()}"`);
  const server = parsePostgresServerVersionNum(serverVersionNum);
  const serverMajor = postgresMajor(server);
  if (comparePostgresMajor(tool, server) < 0) {
    return refuse(
      `pg_dump ${postgresMajor(tool)} cannot dump a PostgreSQL ${serverMajor} server (pg_dump refuses servers newer than itself); install postgresql-client-${serverMajor} (apt-get install postgresql-client-${serverMajor}, from apt.postgresql.org when Debian lacks it)`,
    );
  }
  if (
    server.major < OLDEST_DUMPABLE_POSTGRES.major ||
    (server.major === OLDEST_DUMPABLE_POSTGRES.major && server.minor < OLDEST_DUMPABLE_POSTGRES.minor)
  ) {
    return refuse(`pg_dump ${postgresMajor(tool)} no longer dumps PostgreSQL ${serverMajor}; use the pg_dump of a release that supports it, and upgrade that server`);
  }
  return { compatible: true };
}

function postgresVersion(major: number, minor: number, patch: number): ProductVersion {
  return { product: 'postgres', major, minor, patch };
}

/** Before PostgreSQL 10 a major was two numbers (9.6); since, one (15). */
function postgresMajor(version: ProductVersion): string {
  return version.major >= 10 ? String(version.major) : `${version.major}.${version.minor}`;
}

function comparePostgresMajor(a: ProductVersion, b: ProductVersion): number {
  if (a.major !== b.major) return a.major - b.major;
  return a.major >= 10 ? 0 : a.minor - b.minor;
}

function compareSeries(a: ProductVersion, b: ProductVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

function series(version: ProductVersion): string {
  return `${version.major}.${version.minor}`;
}

function dotted(version: ProductVersion): string {
  return `${version.major}.${version.minor}.${version.patch}`;
}

function refuse(reason: string): CompatibilityVerdict {
  return { compatible: false, reason };
}

function unreadable(what: string): CompatibilityVerdict {
  return refuse(`cannot read ${what}, so cannot tell whether the tool can dump this server; check the installed client tools`);
}
