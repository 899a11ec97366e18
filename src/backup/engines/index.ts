/**
 * The database backup engines: what the rest of Seckill may import from `src/backup/engines`.
 */
import { redactUrl } from '../../config/config.js';
import type { BackupEngine } from '../backup-engine.js';
import { MariabackupEngine } from './mariabackup-engine.js';
import { MysqlDumpEngine } from './mysql-dump-engine.js';
import { PostgresDumpEngine } from './postgres-engine.js';
import { SqliteBackupEngine } from './sqlite-engine.js';

export { MariabackupEngine } from './mariabackup-engine.js';
export { MysqlDumpEngine } from './mysql-dump-engine.js';
export { PostgresDumpEngine } from './postgres-engine.js';
export { SqliteBackupEngine } from './sqlite-engine.js';
export { parseDumpPosition } from './binlog-position.js';
export {
  mariabackupCompatibility,
  mysqlDumpCompatibility,
  postgresDumpCompatibility,
} from './dump-tool-compatibility.js';
export type { CompatibilityVerdict } from './dump-tool-compatibility.js';
export { ToolFailedError } from './tool-process.js';

/** How MariaDB/MySQL databases are copied: SQL (`mariadb-dump`) or data files (`mariabackup`). */
export interface EngineOptions {
  readonly mysqlMethod: 'logical' | 'physical';
}

/**
 * The backup engine for a database URL's scheme: `sqlite:` → SQLite online backup,
 * `mysql://`/`mariadb://` → `mariadb-dump` (logical) or `mariabackup` (physical),
 * `postgres://`/`postgresql://` → `pg_dump`.
 *
 * @throws Error for an unknown scheme, or when the engine's tool is not installed (naming
 *   the package to install, e.g. `apt-get install mariadb-backup`).
 *
 * @example
 * const engine = engineFor(config.databaseUrl, { mysqlMethod: config.backupMysqlMethod });
 * const check = await engine.check(config.databaseUrl);
 */
export function engineFor(databaseUrl: string, options: EngineOptions): BackupEngine {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite':
      return new SqliteBackupEngine();
    case 'mysql':
    case 'mariadb':
      return options.mysqlMethod === 'physical' ? new MariabackupEngine() : new MysqlDumpEngine();
    case 'postgres':
    case 'postgresql':
      return new PostgresDumpEngine();
    default:
      throw new Error(
        `no backup engine for the database URL "${redactUrl(databaseUrl)}": its scheme is not one of sqlite:, mysql://, mariadb://, postgres://, postgresql://`,
      );
  }
}
