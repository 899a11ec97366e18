import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { BackupTarget } from '../backup-target.js';
import { ArchiveSyncLoop } from './archiver-status.js';
import type { ArchiverStatus, ArchiverTiming } from './archiver-status.js';
import { putJson, uploadLogFile } from './archive-transfer.js';
import { binlogArchivePrefix, binlogIndexKey, byBinlogSequence, readBinlogIndex, type ArchivedBinlog, type BinlogArchiveIndex } from './binlog-archive.js';
import { BinlogScan, binlogSequence } from './binlog-file.js';
import { describeAddress, mariadbConnectionArgs, mariadbPasswordEnv, parseDatabaseAddress, type DatabaseAddress } from './database-address.js';
import { SupervisedTool } from './supervised-tool.js';
import { requireTool, type ToolCommand } from './tool-process.js';

/** Options of {@link BinlogArchiver}. */
export interface BinlogArchiverOptions extends ArchiverTiming {
  /**
   * The primary, e.g. `mysql://archiver:secret@db1:3306/`. The user needs `REPLICATION SLAVE`
   * (to stream the binlog) and `BINLOG MONITOR` (`SHOW BINARY LOGS`, `SHOW MASTER STATUS`).
   */
  readonly databaseUrl: string;
  readonly target: BackupTarget;
  /** Local folder `mariadb-binlog` writes into; kept between runs so a restart resumes. */
  readonly spoolDir: string;
  /** Name of the archive on the target; default `server-<server_id>`. */
  readonly archive?: string;
  /** The server id `mariadb-binlog` registers with on the primary; must differ from every real replica's. Default 65535. */
  readonly connectionServerId?: number;
  /** Told whenever the streaming tool dies or a sync fails, with the reason. */
  readonly onFailure?: (reason: string) => void;
}

interface ServerPosition {
  readonly file: string;
  readonly position: number;
}

const BINLOG_HEADER_BYTES = 4;

function comparePositions(a: ServerPosition, b: ServerPosition): number {
  const bySequence = (binlogSequence(a.file) ?? 0) - (binlogSequence(b.file) ?? 0);
  return bySequence !== 0 ? bySequence : a.position - b.position;
}

function isoSeconds(unixSeconds: number | undefined): string | undefined {
  return unixSeconds === undefined ? undefined : new Date(unixSeconds * 1000).toISOString();
}

/**
 * Archives a MariaDB/MySQL primary's binary logs continuously, for point-in-time recovery.
 *
 * `mariadb-binlog --read-from-remote-server --raw --stop-never` streams the binlog into a
 * local spool as a replica would; every `syncIntervalMs` the archiver copies each
 * completed binlog, and a snapshot of the one still being written (cut at an event
 * boundary), to `pitr/binlog/<archive>/` on the target with an index of files and event
 * times. A tool that dies is restarted with backoff from the newest file in the spool.
 *
 * @example
 * const archiver = new BinlogArchiver({ databaseUrl, target, spoolDir: '/var/lib/seckill/binlog-spool' });
 * await archiver.start();
 * archiver.status().lagSeconds; // the RPO right now
 * await archiver.stop();
 */
export class BinlogArchiver {
  readonly #options: BinlogArchiverOptions;
  readonly #address: DatabaseAddress;
  readonly #tool: SupervisedTool;
  readonly #files = new Map<string, ArchivedBinlog>();
  readonly #scans = new Map<string, BinlogScan>();
  #archive = '';
  #serverId = 0;
  #connection: Connection | undefined;
  readonly #progress: ArchiveSyncLoop;

  constructor(options: BinlogArchiverOptions) {
    this.#progress = new ArchiveSyncLoop(() => this.#syncOnce(), options.onFailure);
    this.#options = Object.freeze({ ...options });
    this.#address = parseDatabaseAddress(options.databaseUrl);
    if (this.#address.engine !== 'mysql') throw new Error('BinlogArchiver archives MariaDB/MySQL binary logs; for PostgreSQL use WalArchiver');
    this.#tool = new SupervisedTool({
      ...options,
      prepare: () => this.#prepare(),
      onFailure: (reason) => this.#fail(reason),
    });
  }

  /** The archive's name on the target (known after {@link start}). */
  get archive(): string {
    return this.#archive;
  }

  /**
   * Checks the server (binary logging on), loads the archive's index, uploads what a
   * previous run left in the spool, and starts streaming.
   *
   * @throws Error when binary logging is off, the archive belongs to another server, or the
   *   server's binlog numbering went backwards (RESET MASTER) under an existing archive.
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      await this.#connection?.end().catch(() => undefined);
      this.#connection = undefined;
      throw error;
    }
  }

  async #start(): Promise<void> {
    await mkdir(this.#options.spoolDir, { recursive: true, mode: 0o700 });
    const connection = await this.#connect();
    const [rows] = await connection.query<RowDataPacket[]>('SELECT @@server_id AS serverId, @@log_bin AS logBin');
    const settings = rows[0] as { serverId: number; logBin: number };
    if (Number(settings.logBin) !== 1) {
      throw new Error(
        `binary logging is off on ${describeAddress(this.#address)}, so there is nothing to archive; ` +
          'set log_bin, server_id and binlog_format=ROW in the server configuration and restart it',
      );
    }
    this.#serverId = Number(settings.serverId);
    this.#archive = this.#options.archive ?? `server-${this.#serverId}`;
    const index = await readBinlogIndex(this.#options.target, this.#archive);
    if (index !== undefined && index.serverId !== this.#serverId) {
      throw new Error(
        `binlog archive ${this.#archive} on ${this.#options.target.name} holds the binlogs of server_id ${index.serverId} (${index.source}), ` +
          `but ${describeAddress(this.#address)} has server_id ${this.#serverId}; give this server its own archive name`,
      );
    }
    for (const file of index?.files ?? []) this.#files.set(file.name, file);
    this.#progress.syncedAt = index?.syncedAt === undefined ? undefined : new Date(index.syncedAt);
    const newestArchived = [...this.#files.values()].filter((file) => file.complete).sort(byBinlogSequence).at(-1);
    const serverLogs = await this.#serverLogs();
    const newestOnServer = serverLogs.at(-1);
    if (newestArchived !== undefined && newestOnServer !== undefined && byBinlogSequence(newestArchived, { name: newestOnServer }) > 0) {
      throw new Error(
        `the server's newest binlog ${newestOnServer} is older than ${newestArchived.name}, already archived as ${this.#archive}: ` +
          'its numbering went backwards (RESET MASTER, or another server); archive it under a new archive name and take a new backup',
      );
    }
    await this.#tool.start();
    this.#progress.startTimer(this.#options.syncIntervalMs ?? 5000);
  }

  /** Stops streaming, copies what the spool holds one last time, and closes the connection. */
  async stop(): Promise<void> {
    this.#progress.stopTimer();
    await this.#tool.stop();
    try {
      // Never started (or start failed before the archive was known): nothing to copy.
      if (this.#archive !== '') await this.sync();
    } finally {
      await this.#connection?.end().catch(() => undefined);
      this.#connection = undefined;
    }
  }

  /**
   * Copies completed binlogs and a snapshot of the current one to the target now (the
   * timer does this every `syncIntervalMs`). Calls never overlap.
   */
  sync(): Promise<void> {
    return this.#progress.sync();
  }

  /** How the archiver is doing; `lagSeconds` is the RPO right now. */
  status(): ArchiverStatus {
    return this.#progress.status(this.#tool);
  }

  #fail(reason: string): void {
    this.#progress.fail(reason);
  }

  async #connect(): Promise<Connection> {
    if (this.#connection === undefined) {
      const connection = await createConnection({
        host: this.#address.host,
        port: this.#address.port,
        user: this.#address.user,
        password: this.#address.password,
        connectTimeout: 10_000,
      });
      // A dropped connection is replaced on the next use instead of failing every sync.
      connection.on('error', () => {
        if (this.#connection === connection) this.#connection = undefined;
      });
      this.#connection = connection;
    }
    return this.#connection;
  }

  async #query<T extends RowDataPacket>(sql: string): Promise<T[]> {
    try {
      const [rows] = await (await this.#connect()).query<T[]>(sql);
      return rows;
    } catch (error) {
      this.#connection?.destroy();
      this.#connection = undefined;
      throw error;
    }
  }

  async #serverLogs(): Promise<string[]> {
    const rows = await this.#query<RowDataPacket>('SHOW BINARY LOGS');
    return rows.map((row) => String(row.Log_name));
  }

  async #serverPosition(): Promise<ServerPosition | undefined> {
    const rows = await this.#query<RowDataPacket>('SHOW MASTER STATUS');
    const row = rows[0];
    return row === undefined ? undefined : { file: String(row.File), position: Number(row.Position) };
  }

  async #spoolFiles(): Promise<string[]> {
    const names = await readdir(this.#options.spoolDir);
    return names.filter((name) => !name.startsWith('.') && binlogSequence(name) !== undefined).sort((a, b) => byBinlogSequence({ name: a }, { name: b }));
  }

  /** Where to (re)start streaming: the file the spool was writing, else the one after the newest archived, else the oldest the server has. */
  async #startFile(): Promise<string> {
    const spooled = (await this.#spoolFiles()).at(-1);
    const serverLogs = await this.#serverLogs();
    if (serverLogs.length === 0) throw new Error(`${describeAddress(this.#address)} lists no binary logs (SHOW BINARY LOGS is empty)`);
    const archived = [...this.#files.values()].sort(byBinlogSequence).at(-1);
    let wanted = spooled ?? (archived === undefined ? serverLogs[0] : archived.complete ? undefined : archived.name);
    if (wanted === undefined && archived !== undefined) {
      wanted = serverLogs.find((name) => byBinlogSequence({ name }, archived) > 0) ?? serverLogs.at(-1);
    }
    const first = wanted as string;
    if (serverLogs.includes(first)) return first;
    const next = serverLogs.find((name) => byBinlogSequence({ name }, { name: first }) > 0) ?? (serverLogs.at(-1) as string);
    this.#fail(
      `binlog ${first} was purged from ${describeAddress(this.#address)} before it was archived: the archive has a gap up to ${next}; ` +
        'backups taken before the gap cannot be rolled forward past it; take a new backup now, and keep binlogs longer (binlog_expire_logs_seconds)',
    );
    return next;
  }

  async #prepare(): Promise<ToolCommand> {
    // The tool is not running: what the spool holds is stable, so store it before the restart rewrites the current file.
    await this.sync().catch(() => undefined);
    const file = await this.#startFile();
    return {
      command: requireTool('mariadb-binlog', 'mariadb-client'),
      args: [
        // Must come first: otherwise /etc/mysql/my.cnf would point the tool at the machine's socket.
        '--no-defaults',
        '--read-from-remote-server',
        '--raw',
        '--stop-never',
        `--stop-never-slave-server-id=${this.#options.connectionServerId ?? 65535}`,
        ...mariadbConnectionArgs(this.#address),
        `--result-file=${this.#options.spoolDir}/`,
        file,
      ],
      env: mariadbPasswordEnv(this.#address),
    };
  }

  #scanOf(name: string): BinlogScan {
    let scan = this.#scans.get(name);
    if (scan === undefined) {
      scan = new BinlogScan();
      this.#scans.set(name, scan);
    }
    return scan;
  }

  async #upload(name: string, complete: boolean, scan: BinlogScan): Promise<ArchivedBinlog> {
    const prefix = binlogArchivePrefix(this.#archive);
    const key = `${prefix}/${name}${complete ? '' : '.partial'}.gz`;
    const stored = await uploadLogFile(this.#options.target, key, join(this.#options.spoolDir, name), scan.completeBytes);
    this.#progress.uploaded(stored.rawBytes);
    const file: ArchivedBinlog = {
      name,
      key,
      complete,
      size: stored.rawBytes,
      sha256: stored.sha256,
      firstEventAt: isoSeconds(scan.firstEventAt),
      lastEventAt: isoSeconds(scan.lastEventAt),
    };
    this.#files.set(name, file);
    return file;
  }

  async #syncOnce(): Promise<void> {
    const startedAt = new Date();
    let serverPosition: ServerPosition | undefined;
    try {
      serverPosition = await this.#serverPosition();
    } catch (error) {
      this.#fail(`cannot read the primary's binlog position (${error instanceof Error ? error.message : String(error)}); still copying the spool`);
    }
    const spooled = await this.#spoolFiles();
    const current = spooled.at(-1);
    const completed = spooled.slice(0, -1);
    let changed = false;
    const finished: ArchivedBinlog[] = [];
    for (const name of completed) {
      const archived = this.#files.get(name);
      if (archived?.complete === true) {
        // Stored by a run that stopped before removing it from the spool.
        finished.push(archived);
        continue;
      }
      const scan = this.#scanOf(name);
      await scan.advance(join(this.#options.spoolDir, name), (await stat(join(this.#options.spoolDir, name))).size);
      finished.push(await this.#upload(name, true, scan));
      changed = true;
    }
    let archivedTo: ServerPosition | undefined;
    if (current !== undefined && this.#files.get(current)?.complete !== true) {
      const scan = this.#scanOf(current);
      await scan.advance(join(this.#options.spoolDir, current), (await stat(join(this.#options.spoolDir, current))).size);
      const previous = this.#files.get(current);
      if (scan.completeBytes > BINLOG_HEADER_BYTES && (previous === undefined || previous.size < scan.completeBytes)) {
        await this.#upload(current, false, scan);
        changed = true;
      }
      const stored = this.#files.get(current);
      if (stored !== undefined) archivedTo = { file: current, position: stored.size };
    }
    if (serverPosition !== undefined && archivedTo !== undefined) {
      const behind = comparePositions(serverPosition, archivedTo);
      this.#progress.bytesBehind = serverPosition.file === archivedTo.file ? Math.max(0, serverPosition.position - archivedTo.position) : undefined;
      // Whatever the server had committed when we asked is in what we stored: the archive is current as of then.
      if (behind <= 0) {
        this.#progress.syncedAt = startedAt;
        this.#progress.bytesBehind = 0;
        this.#progress.lastFailure = undefined;
        changed = true;
      }
    }
    if (changed) await this.#writeIndex();
    for (const file of finished) {
      await this.#options.target.delete([`${binlogArchivePrefix(this.#archive)}/${file.name}.partial.gz`]);
      await unlink(join(this.#options.spoolDir, file.name)).catch(() => undefined);
      this.#scans.delete(file.name);
    }
  }

  async #writeIndex(): Promise<void> {
    const index: BinlogArchiveIndex = {
      formatVersion: 1,
      archive: this.#archive,
      serverId: this.#serverId,
      source: describeAddress(this.#address),
      files: [...this.#files.values()].sort(byBinlogSequence),
      syncedAt: this.#progress.syncedAt?.toISOString(),
      updatedAt: new Date().toISOString(),
    };
    await putJson(this.#options.target, binlogIndexKey(this.#archive), index);
  }
}
