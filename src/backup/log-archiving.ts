import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SeckillConfig } from '../config/config.js';
import { pitrTargetSetting } from './log-replay.js';
import { BinlogArchiver, takeBaseBackup, WalArchiver } from './pitr/index.js';
import type { ArchiverStatus, BaseBackup } from './pitr/index.js';
import { closeTarget, openTarget } from './targets/open-target.js';

/** A running binlog or WAL archiver. */
export interface LogArchiving {
  /** Running, restarts, and `syncedAt`: everything committed before it is on the target. */
  status(): ArchiverStatus;
  stop(): Promise<void>;
}

/**
 * Starts continuous archiving of the configured database's change log to the PITR target:
 * the MariaDB/MySQL binlog (`mariadb-binlog --read-from-remote-server --raw --stop-never`)
 * or the PostgreSQL WAL (`pg_receivewal`). Returns undefined for SQLite, which has no log.
 * The ops role runs this when `pitrArchive` is on; run it in one process only.
 */
export async function startLogArchiving(config: SeckillConfig, log: Logger): Promise<LogArchiving | undefined> {
  const scheme = config.databaseUrl.slice(0, config.databaseUrl.indexOf(':'));
  const kind = scheme === 'mysql' || scheme === 'mariadb' ? 'binlog' : scheme === 'postgres' || scheme === 'postgresql' ? 'wal' : undefined;
  if (!kind) {
    log.warn('pitrArchive is on, but SQLite keeps no change log to archive: point-in-time recovery is not available');
    return undefined;
  }
  const target = openTarget(pitrTargetSetting(config));
  const options = {
    databaseUrl: config.databaseUrl,
    target,
    spoolDir: join(config.dataDir, `pitr-spool-${kind}`),
    syncIntervalMs: config.pitrSyncIntervalMs,
    onFailure: (reason: string) => log.error({ reason }, `${kind} archiver failed; restarting it`),
  };
  const archiver = kind === 'binlog' ? new BinlogArchiver(options) : new WalArchiver(options);
  await archiver.start();
  log.info({ target: target.name, kind }, 'continuous log archiving started');
  return {
    status: () => archiver.status(),
    async stop() {
      await archiver.stop();
      await closeTarget(target);
    },
  };
}

/**
 * Takes a PostgreSQL physical base backup (`pg_basebackup`) to the PITR target: the starting
 * point that archived WAL is replayed onto by `restore --until`.
 */
export async function runBaseBackup(config: SeckillConfig): Promise<BaseBackup> {
  const target = openTarget(pitrTargetSetting(config));
  try {
    return await takeBaseBackup({ databaseUrl: config.databaseUrl, target });
  } finally {
    await closeTarget(target);
  }
}
