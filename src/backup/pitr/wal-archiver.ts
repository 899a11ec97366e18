import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { BackupTarget } from '../backup-target.js';
import { ArchiveSyncLoop } from './archiver-status.js';
import type { ArchiverStatus, ArchiverTiming } from './archiver-status.js';
import { putJson, uploadLogFile } from './archive-transfer.js';
import { describeAddress, parseDatabaseAddress, postgresConnectionArgs, postgresPasswordEnv, type DatabaseAddress } from './database-address.js';
import { postgresProgram } from './postgres-tools.js';
import { SupervisedTool } from './supervised-tool.js';
import { runTool, type ToolCommand } from './tool-process.js';
import { walArchivePrefix, walStateKey, type WalArchiveState } from './wal-archive.js';
import { parseLsn, PARTIAL_WAL_SEGMENT_NAME, TIMELINE_HISTORY_NAME, WAL_SEGMENT_NAME } from './wal-position.js';

/** Options of {@link WalArchiver}. */
export interface WalArchiverOptions extends ArchiverTiming {
  /**
   * The primary, as a superuser or a role with REPLICATION and pg_monitor:
   * `postgres://archiver:secret@db1:5432/postgres` (the database is used for status queries).
   */
  readonly databaseUrl: string;
  readonly target: BackupTarget;
  /** Local folder `pg_receivewal` writes into; kept between runs so a restart resumes. */
  readonly spoolDir: string;
  /**
   * A physical replication slot to stream through, created when missing: the primary then
   * keeps WAL the archiver has not received yet (while it is down), at the price of disk
   * on the primary if the archiver is gone for good — drop the slot then. Default none.
   */
  readonly slot?: string;
  /** Folder of the PostgreSQL programs; default the newest in /usr/lib/postgresql/<major>/bin. */
  readonly binDir?: string;
  /** Told whenever pg_receivewal dies or a sync fails, with the reason. */
  readonly onFailure?: (reason: string) => void;
}

/** `application_name` of our pg_receivewal, to find its row in pg_stat_replication. */
const APPLICATION_NAME = 'seckill_wal_archiver';
/** How long a sync waits for the receiver to confirm what the server had flushed when the sync began. */
const CATCH_UP_MS = 1000;

interface Positions {
  /** The server's WAL flush position. */
  readonly server: bigint;
  /** What our pg_receivewal has flushed to the spool, when it is connected. */
  readonly received: bigint | undefined;
}

/**
 * Archives a PostgreSQL primary's WAL continuously, for point-in-time recovery.
 *
 * `pg_receivewal --synchronous` streams the WAL into a local spool as a standby would;
 * every `syncIntervalMs` the archiver copies each completed segment, timeline history
 * files, and the segment still being written (`.partial`) to `pitr/wal/<system id>/` on
 * the target. A pg_receivewal that dies is restarted with backoff; it resumes from the
 * spool. Pair it with {@link takeBaseBackup} (after it started) and restore with
 * `restoreToTime`.
 *
 * @example
 * const archiver = new WalArchiver({ databaseUrl, target, spoolDir: '/var/lib/seckill/wal-spool', slot: 'seckill_archiver' });
 * await archiver.start();
 * archiver.status().lagSeconds; // the RPO right now
 */
export class WalArchiver {
  readonly #options: WalArchiverOptions;
  readonly #address: DatabaseAddress;
  readonly #tool: SupervisedTool;
  readonly #stored = new Set<string>();
  #systemIdentifier = '';
  #segmentSize = 0;
  #client: pg.Client | undefined;
  #partialUploaded: { name: string; mtimeMs: number; size: number } | undefined;
  readonly #progress: ArchiveSyncLoop;

  constructor(options: WalArchiverOptions) {
    this.#progress = new ArchiveSyncLoop(() => this.#syncOnce(), options.onFailure);
    this.#options = Object.freeze({ ...options });
    this.#address = parseDatabaseAddress(options.databaseUrl);
    if (this.#address.engine !== 'postgres') throw new Error('WalArchiver archives PostgreSQL WAL; for MariaDB/MySQL use BinlogArchiver');
    this.#tool = new SupervisedTool({ ...options, prepare: () => this.#prepare(), onFailure: (reason) => this.#fail(reason) });
  }

  /** The cluster's system identifier (known after {@link start}); its archive is `pitr/wal/<it>/`. */
  get systemIdentifier(): string {
    return this.#systemIdentifier;
  }

  /**
   * Checks the server (`wal_level` replica or logical), creates the slot when asked,
   * uploads what a previous run left in the spool, and starts streaming.
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      await this.#client?.end().catch(() => undefined);
      this.#client = undefined;
      throw error;
    }
  }

  async #start(): Promise<void> {
    await mkdir(this.#options.spoolDir, { recursive: true, mode: 0o700 });
    const { rows } = await (await this.#connect()).query<{ system: string; wal_level: string; senders: string; segment_size: string }>(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system, current_setting('wal_level') AS wal_level,
              current_setting('max_wal_senders') AS senders, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment_size`,
    );
    const row = rows[0];
    if (row === undefined) throw new Error(`${describeAddress(this.#address)} returned no settings row`);
    if (row.wal_level === 'minimal' || Number(row.senders) === 0) {
      throw new Error(
        `${describeAddress(this.#address)} has wal_level=${row.wal_level} and max_wal_senders=${row.senders}: its WAL cannot be streamed; ` +
          'set wal_level=replica and max_wal_senders of at least 2 (one for the archiver, one for base backups) and restart it',
      );
    }
    this.#systemIdentifier = row.system;
    this.#segmentSize = Number(row.segment_size);
    for (const key of await this.#options.target.list(`${walArchivePrefix(this.#systemIdentifier)}/`)) this.#stored.add(key);
    if (this.#options.slot !== undefined) {
      await runTool(
        {
          command: postgresProgram('pg_receivewal', undefined, this.#options.binDir),
          args: [...postgresConnectionArgs(this.#address), '--create-slot', '--if-not-exists', `--slot=${this.#options.slot}`],
          env: postgresPasswordEnv(this.#address),
        },
        `creating replication slot ${this.#options.slot} on ${describeAddress(this.#address)}`,
      );
    }
    await this.#tool.start();
    this.#progress.startTimer(this.#options.syncIntervalMs ?? 5000);
  }

  /** Stops streaming, copies what the spool holds one last time, and closes the connection. The slot stays. */
  async stop(): Promise<void> {
    this.#progress.stopTimer();
    await this.#tool.stop();
    try {
      // Never started (or start failed before the cluster was known): nothing to copy.
      if (this.#systemIdentifier !== '') await this.sync();
    } finally {
      await this.#client?.end().catch(() => undefined);
      this.#client = undefined;
    }
  }

  /** Copies completed segments and the current `.partial` to the target now. Calls never overlap. */
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

  async #connect(): Promise<pg.Client> {
    if (this.#client === undefined) {
      const client = new pg.Client({ connectionString: this.#options.databaseUrl, connectionTimeoutMillis: 10_000 });
      // A dropped connection is replaced on the next use instead of failing every sync.
      client.on('error', () => {
        if (this.#client === client) this.#client = undefined;
      });
      this.#client = client;
      try {
        await client.connect();
      } catch (error) {
        this.#client = undefined;
        throw error;
      }
    }
    return this.#client;
  }

  async #positions(): Promise<Positions> {
    try {
      const { rows } = await (await this.#connect()).query<{ server: string; received: string | null }>(
        `SELECT pg_current_wal_flush_lsn()::text AS server,
                (SELECT flush_lsn::text FROM pg_stat_replication WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1) AS received`,
        [APPLICATION_NAME],
      );
      const row = rows[0];
      if (row === undefined) throw new Error('no row');
      return { server: parseLsn(row.server), received: row.received === null ? undefined : parseLsn(row.received) };
    } catch (error) {
      await this.#client?.end().catch(() => undefined);
      this.#client = undefined;
      throw error;
    }
  }

  async #prepare(): Promise<ToolCommand> {
    // pg_receivewal is not running: store what the spool holds before the restart goes on from it.
    await this.sync().catch(() => undefined);
    return {
      command: postgresProgram('pg_receivewal', undefined, this.#options.binDir),
      args: [
        `--directory=${this.#options.spoolDir}`,
        ...postgresConnectionArgs(this.#address),
        // fsync and confirm every write: the spool, and the .partial we copy, are never behind what the server was told.
        '--synchronous',
        // We restart it ourselves, with backoff, and see each failure.
        '--no-loop',
        ...(this.#options.slot === undefined ? [] : [`--slot=${this.#options.slot}`]),
      ],
      env: { ...postgresPasswordEnv(this.#address), PGAPPNAME: APPLICATION_NAME },
    };
  }

  async #store(name: string, key: string): Promise<void> {
    const stored = await uploadLogFile(this.#options.target, key, join(this.#options.spoolDir, name));
    this.#stored.add(key);
    this.#progress.uploaded(stored.rawBytes);
  }

  async #syncOnce(): Promise<void> {
    const startedAt = new Date();
    let covered = false;
    try {
      let positions = await this.#positions();
      const deadline = Date.now() + CATCH_UP_MS;
      while (this.#tool.running && (positions.received ?? -1n) < positions.server && Date.now() < deadline) {
        await sleep(50);
        positions = { server: positions.server, received: (await this.#positions()).received };
      }
      // What the server had flushed when this sync began is in the spool, so it is in what we copy next.
      covered = positions.received !== undefined && positions.received >= positions.server;
      this.#progress.bytesBehind = positions.received === undefined ? undefined : Math.max(0, Number(positions.server - positions.received));
    } catch (error) {
      this.#fail(`cannot read the primary's WAL position (${error instanceof Error ? error.message : String(error)}); still copying the spool`);
    }
    const prefix = walArchivePrefix(this.#systemIdentifier);
    const names = (await readdir(this.#options.spoolDir)).sort();
    const segments = names.filter((name) => WAL_SEGMENT_NAME.test(name));
    for (const name of names.filter((name) => TIMELINE_HISTORY_NAME.test(name))) {
      if (!this.#stored.has(`${prefix}/${name}.gz`)) await this.#store(name, `${prefix}/${name}.gz`);
    }
    for (const name of segments) {
      const key = `${prefix}/${name}.gz`;
      if (this.#stored.has(key)) continue;
      await this.#store(name, key);
      const partialKey = `${prefix}/${name}.partial.gz`;
      if (this.#stored.delete(partialKey)) await this.#options.target.delete([partialKey]);
    }
    // pg_receivewal resumes after the newest segment in the spool: keep that one.
    for (const name of segments.slice(0, -1)) await unlink(join(this.#options.spoolDir, name)).catch(() => undefined);
    const partial = names.find((name) => PARTIAL_WAL_SEGMENT_NAME.test(name));
    if (partial !== undefined) {
      const segment = partial.replace(/\.partial$/, '');
      const info = await stat(join(this.#options.spoolDir, partial)).catch(() => undefined);
      const unchanged = this.#partialUploaded?.name === partial && this.#partialUploaded.mtimeMs === info?.mtimeMs && this.#partialUploaded.size === info?.size;
      if (info === undefined) {
        // It was completed (renamed) meanwhile: the next sync stores the complete segment.
        covered = false;
      } else if (!unchanged && !this.#stored.has(`${prefix}/${segment}.gz`)) {
        try {
          await this.#store(partial, `${prefix}/${segment}.partial.gz`);
          this.#partialUploaded = { name: partial, mtimeMs: info.mtimeMs, size: info.size };
        } catch (error) {
          covered = false;
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
    }
    if (covered) {
      this.#progress.syncedAt = startedAt;
      this.#progress.bytesBehind = 0;
      this.#progress.lastFailure = undefined;
    }
    const state: WalArchiveState = {
      formatVersion: 1,
      systemIdentifier: this.#systemIdentifier,
      source: describeAddress(this.#address),
      segmentSize: this.#segmentSize,
      syncedAt: this.#progress.syncedAt?.toISOString(),
      updatedAt: new Date().toISOString(),
    };
    await putJson(this.#options.target, walStateKey(this.#systemIdentifier), state);
  }
}
