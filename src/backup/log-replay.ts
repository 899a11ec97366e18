import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { SeckillConfig } from '../config/config.js';
import { openDatabaseBackend } from '../db/open-database.js';
import type { BackupManifest } from './backup-manifest.js';
import type { BackupTarget } from './backup-target.js';
import type { ProgressListener } from './backup-progress.js';
import { engineFor } from './engines/index.js';
import { baseBackupFor, planBinlogReplay, restoreToTime } from './pitr/index.js';
import { closeTarget, openTarget } from './targets/open-target.js';

/** A replay of the change log onto a restored base backup, up to a point in time. */
export interface LogReplay {
  /** What it will replay, for the restore's plan ("binlog from mariadb-bin.000042:960 to 2026-…"). */
  readonly description: string;
  /** Replays the archived log onto the database at `url` (where the base backup was just restored). */
  apply(url: string, progress: ProgressListener): Promise<void>;
}

/** What a point-in-time restore asks for. */
export interface LogReplayRequest {
  readonly manifest: BackupManifest;
  /** Replay up to and including this instant. */
  readonly until: Date;
  readonly config: SeckillConfig;
}

/** The target that holds the binlog/WAL archive (`pitrTarget`, or the first backup target). */
export function pitrTargetSetting(config: SeckillConfig) {
  return config.backupTargets.find((t) => t.name === config.pitrTarget) ?? config.backupTargets[0];
}

/**
 * Plans point-in-time recovery from the archive that the ops role keeps (`pitrArchive`):
 * MariaDB/MySQL rolls the restored logical dump forward through the archived binlog from
 * the dump's position; PostgreSQL restores the newest physical base backup before `until`
 * into a scratch server, replays the archived WAL to `until`, and copies that state over the
 * restored dump. Called before the base restore starts, so a recovery point that cannot be
 * reached is refused before anything is written.
 *
 * @throws Error saying why this backup cannot be taken to `until`.
 */
export async function replayLogs(request: LogReplayRequest): Promise<LogReplay> {
  const { manifest, until, config } = request;
  const database = manifest.database;
  const refuse = (why: string): never => {
    throw new Error(
      `point-in-time recovery (--until ${until.toISOString()}) is not possible for backup ${manifest.id}: ${why}. ` +
        `Restore without --until to get the state of ${manifest.createdAt}; see docs/pitr.md`,
    );
  };
  if (!database) return refuse('it holds no database');
  if (until.getTime() < Date.parse(manifest.createdAt)) refuse(`${until.toISOString()} is before the backup was taken (${manifest.createdAt})`);
  const setting = pitrTargetSetting(config);
  switch (database.engine) {
    case 'mysql': {
      if (database.position?.kind !== 'binlog') return refuse('the backup recorded no binlog position (binary logging was off on the server)');
      const target = openTarget(setting);
      let plan;
      try {
        plan = await planBinlogReplay({
          target,
          from: database.position,
          until,
          sourceDatabase: database.name,
          backupCreatedAt: new Date(manifest.createdAt),
        });
      } catch (err) {
        await closeTarget(target);
        return refuse((err as Error).message);
      }
      return {
        description: plan.description,
        async apply(url) {
          try {
            await plan.apply(url);
          } finally {
            await closeTarget(target);
          }
        },
      };
    }
    case 'postgres': {
      const target = openTarget(setting);
      const base = await baseBackupFor(target, until).catch(() => undefined);
      if (!base) {
        await closeTarget(target);
        return refuse(`no PostgreSQL base backup on target "${setting.name}" completed before that time (take them with \`seckill backup base\` while the WAL archive runs)`);
      }
      return {
        description: `PostgreSQL base backup ${base.id} with the archived WAL replayed to ${until.toISOString()}, copied over the restored dump`,
        apply: (url) => replayPostgres(target, base.key, until, database.name, url),
      };
    }
    default:
      return refuse(`${database.engine} keeps no change log to replay`);
  }
}

/** Recovers the cluster to `until` in a scratch server and puts its `database` in place of the one at `url`. */
async function replayPostgres(target: BackupTarget, baseBackupKey: string, until: Date, database: string, url: string): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'seckill-pitr-'));
  try {
    // The scratch server runs as the postgres user, which must reach the cluster folder inside.
    await chmod(dataDir, 0o755);
    const restored = await restoreToTime({ target, baseBackupKey, until, dataDir: join(dataDir, 'cluster'), port: await freeLoopbackPort() });
    try {
      // The dump restored a moment ago into this (empty or --force) target is replaced whole.
      const backend = openDatabaseBackend(url);
      try {
        await sql`DROP SCHEMA public CASCADE`.execute(backend.db);
        await sql`CREATE SCHEMA public`.execute(backend.db);
      } finally {
        await backend.close();
      }
      const engine = engineFor(url, { mysqlMethod: 'logical' });
      const dump = await engine.dump(restored.urlFor(database));
      await engine.restore(dump.stream, url);
      await dump.finished;
    } finally {
      await restored.stop();
    }
  } finally {
    await closeTarget(target);
    await rm(dataDir, { recursive: true, force: true });
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
