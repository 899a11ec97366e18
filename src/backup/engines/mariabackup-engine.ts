import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BackupEngine, DumpStream, ToolCheck } from '../backup-engine.js';
import type { LogPosition } from '../backup-manifest.js';
import { mariabackupCompatibility, parseMysqlToolVersion } from './dump-tool-compatibility.js';
import { serverAddress } from './server-address.js';
import type { ServerAddress } from './server-address.js';
import { mysqlServerFacts } from './server-facts.js';
import { mysqlToolEnv } from './tool-environment.js';
import { requireTool } from './tool-locator.js';
import { runTool, startTool, whenReadToEnd } from './tool-process.js';

const MYSQL_DEFAULTS = { port: 3306, user: 'root' } as const;
const PACKAGE = 'mariadb-backup';
/** `[00] 2026-… MySQL binlog position: filename 'mariadb-bin.000001', position '960', GTID of the last change '0-1-3'` */
const BINLOG_LINE = /binlog position: filename '([^']+)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/;

/**
 * Physical backups of a MariaDB server with `mariabackup --backup --stream=xbstream`: a
 * copy of the data files made consistent by the redo log copied alongside, with only a
 * moment's BACKUP STAGE BLOCK_COMMIT at the end. It copies the whole server instance (every
 * database), and it must run on the database host, because it reads the data folder.
 *
 * A physical backup is restored into a data folder, not into a database URL:
 * {@link MariabackupEngine.restoreDataDirectory} unpacks and prepares it, then a server
 * is started on that folder.
 */
export class MariabackupEngine implements BackupEngine {
  readonly engine = 'mysql' as const;
  readonly method = 'mariabackup' as const;
  readonly extension = '.xbstream';
  readonly #mariabackup: string;

  /** Refuses to be built on a host without `mariabackup` and `mbstream`. */
  constructor() {
    this.#mariabackup = requireTool([{ name: 'mariabackup', debianPackage: PACKAGE }], 'take physical MariaDB backups');
    requireTool([{ name: 'mbstream', debianPackage: PACKAGE }], 'take physical MariaDB backups');
  }

  async check(url: string): Promise<ToolCheck> {
    return (await this.#inspect(url)).check;
  }

  async dump(url: string): Promise<DumpStream> {
    const { check, address, dataDir } = await this.#inspect(url);
    if (!check.compatible) {
      throw new Error(`refusing to back up the MariaDB server at ${address.host}:${address.port}: ${check.reason}`);
    }
    // mariabackup keeps its bookkeeping files here even when it streams everything.
    const workDir = await mkdtemp(join(tmpdir(), 'seckill-mariabackup-'));
    let position: LogPosition | undefined;
    const running = startTool({
      name: 'mariabackup',
      command: this.#mariabackup,
      args: [
        '--no-defaults',
        '--backup',
        '--stream=xbstream',
        `--target-dir=${workDir}`,
        `--datadir=${dataDir}`,
        '--protocol=tcp',
        `--host=${address.host}`,
        `--port=${address.port}`,
        `--user=${address.user}`,
      ],
      env: mysqlToolEnv(address.password),
      onStderrLine(line) {
        const found = BINLOG_LINE.exec(line);
        if (found === null) return;
        const gtid = found[3];
        position = { kind: 'binlog', file: found[1] as string, position: Number(found[2]), ...(gtid === undefined || gtid === '' ? {} : { gtid }) };
      },
    });
    const stream = running.stdout;
    const finished = whenReadToEnd(stream, running.exited, () => (position === undefined ? {} : { position }));
    void running.exited.catch(() => undefined).finally(() => rm(workDir, { recursive: true, force: true }));
    return { stream, finished };
  }

  /** Always throws: a physical backup is a data folder, not SQL to replay into a database. */
  async restore(_dump: Readable, url: string): Promise<void> {
    throw new Error(
      `a physical (mariabackup) backup cannot be restored into the database ${serverAddress(url, MYSQL_DEFAULTS).database}: ` +
        'it is a whole server data folder. Restore it as a data folder instead (MariabackupEngine.restoreDataDirectory does steps 1 and 2): ' +
        '1) stream the decrypted, decompressed artifact into `mbstream -x -C <empty folder>`; ' +
        '2) `mariabackup --prepare --target-dir=<folder>`; ' +
        '3) `chown -R mysql:mysql <folder>` and start mariadbd with `--datadir=<folder>` (a scratch instance on a free port, ' +
        'or the real one after stopping it and moving the old data folder away). ' +
        'To restore into an existing server database, take logical backups (backupMysqlMethod: logical).',
    );
  }

  /**
   * Unpacks a physical backup into `dataDir` (which must not exist or be empty) and prepares
   * it (`mariabackup --prepare` applies the copied redo log), so a MariaDB server of the
   * same series can be started on it: `mariadbd --datadir=<dataDir> …`.
   *
   * @example
   * const engine = new MariabackupEngine();
   * await engine.restoreDataDirectory(createReadStream('database.xbstream'), '/var/lib/mysql-restored');
   */
  async restoreDataDirectory(dump: Readable, dataDir: string): Promise<void> {
    await mkdir(dataDir, { recursive: true });
    if ((await readdir(dataDir)).length > 0) {
      throw new Error(`refusing to restore a physical backup into ${dataDir}: the folder is not empty; give a new or empty folder`);
    }
    const mbstream = requireTool([{ name: 'mbstream', debianPackage: PACKAGE }], 'unpack a physical MariaDB backup');
    await runTool({ name: 'mbstream', command: mbstream, args: ['-x', '-C', dataDir], env: mysqlToolEnv('') }, dump);
    await runTool({
      name: 'mariabackup --prepare',
      command: this.#mariabackup,
      args: ['--no-defaults', '--prepare', `--target-dir=${dataDir}`],
      env: mysqlToolEnv(''),
    });
  }

  async #inspect(url: string): Promise<{ check: ToolCheck; address: ServerAddress; dataDir: string }> {
    const address = serverAddress(url, MYSQL_DEFAULTS);
    const server = await mysqlServerFacts(url);
    const { stdout, stderr } = await runTool({
      name: 'mariabackup',
      command: this.#mariabackup,
      args: ['--no-defaults', '--version'],
      env: mysqlToolEnv(''),
    });
    // mariabackup prints its version on stderr.
    const versionText = `${stdout}\n${stderr}`.split('\n').find((line) => /mariabackup/i.test(line))?.trim() ?? stderr.trim();
    const version = parseMysqlToolVersion(versionText);
    let verdict = mariabackupCompatibility(versionText, server.version);
    if (verdict.compatible && !isThisHost(address.host)) {
      verdict = {
        compatible: false,
        reason: `mariabackup copies the data folder from the local disk, and the server ${address.host}:${address.port} is not on this host; run the backup on the database host, or use the logical method (backupMysqlMethod: logical)`,
      };
    } else if (verdict.compatible && !readable(server.dataDir)) {
      verdict = {
        compatible: false,
        reason: `mariabackup reads the server's data folder ${server.dataDir}, which is not readable here; run the backup on the database host as a user that can read it (root or mysql)`,
      };
    }
    const check: ToolCheck = {
      tool: { name: 'mariabackup', version: version === undefined ? versionText : `${version.major}.${version.minor}.${version.patch}-MariaDB` },
      server: { version: server.version },
      compatible: verdict.compatible,
      ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
    };
    return { check, address, dataDir: server.dataDir };
  }
}

/**
 * Whether `host` names this machine. A remote server's `@@datadir` may well exist here too
 * (another local MariaDB's), and copying those files would be a backup of the wrong server.
 */
function isThisHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || /^127\./.test(host)) return true;
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((entry) => entry.address === host) ?? false);
}

function readable(dir: string): boolean {
  try {
    accessSync(dir, constants.R_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
