import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { BackupTarget } from '../src/backup/backup-target.js';
import type { LogPosition } from '../src/backup/backup-manifest.js';
import { MysqlDumpEngine } from '../src/backup/engines/index.js';
import { BinlogArchiver, replayBinlogs, restoreToTime, takeBaseBackup, WalArchiver } from '../src/backup/pitr/index.js';
import { closeTarget, openTarget } from '../src/backup/targets/open-target.js';
import type { DatabaseServer } from './support/database-server.js';
import { freePort } from './support/free-port.js';
import { startMariaDb } from './support/mariadb-server.js';
import { startPostgres } from './support/postgres-server.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { createScratchDir, removeScratchDir } from './support/scratch-dir.js';
import { sharedMariaDb } from './support/servers.js';

/** The archive and base backups go to each kind of backup target. */
const TARGETS = ['local folder', 'S3-compatible'] as const;
type TargetKind = (typeof TARGETS)[number];

let s3: Promise<S3Server> | undefined;
let targetCount = 0;

after(async () => {
  await (await s3)?.stop();
});

/** A fresh, empty backup target of the given kind. */
async function freshTarget(kind: TargetKind, scratch: string): Promise<BackupTarget> {
  targetCount += 1;
  if (kind === 'local folder') return openTarget({ name: 'local', url: join(scratch, `target-${targetCount}`) });
  s3 ??= startS3Server();
  return openTarget({ name: 'offsite', url: (await s3).targetUrl(`pitr-${process.pid}-${targetCount}`) });
}

/** Waits until `condition` holds, polling; fails naming `what` after `timeoutMs`. */
async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** Moves past a second boundary so that events before and after `T` fall in different seconds (binlog times have second resolution). */
async function pastASecond(): Promise<void> {
  await sleep(1100);
}

async function mysqlQuery(url: string, sql: string): Promise<unknown[]> {
  const connection = await createConnection(url);
  try {
    const [rows] = await connection.query(sql);
    return rows as unknown[];
  } finally {
    await connection.end();
  }
}

async function mysqlOrderIds(url: string): Promise<string[]> {
  const rows = (await mysqlQuery(url, 'SELECT id FROM orders ORDER BY id')) as { id: string }[];
  return rows.map((row) => row.id);
}

/** A logical backup as `seckill backup run` takes it: the dump, and the binlog position the engine read from it. */
async function logicalBackup(url: string): Promise<{ dump: Buffer; position: LogPosition }> {
  const running = await new MysqlDumpEngine().dump(url);
  const chunks: Buffer[] = [];
  for await (const chunk of running.stream) chunks.push(chunk as Buffer);
  const { position } = await running.finished;
  assert.ok(position?.kind === 'binlog', 'the dump of a server with a binlog records its position');
  return { dump: Buffer.concat(chunks), position };
}

function databaseName(url: string): string {
  return new URL(url).pathname.slice(1);
}

describe('point-in-time recovery: MariaDB binlog', () => {
  let primary: DatabaseServer;
  let restoreServer: DatabaseServer;
  let scratch: string;

  before(async () => {
    [primary, restoreServer] = await Promise.all([
      // Not UTC on purpose: the replay must cut at the right instant whatever the server's time zone.
      startMariaDb({ config: { log_bin: 'mariadb-bin', binlog_format: 'ROW', server_id: 1, default_time_zone: "'+05:30'" } }),
      sharedMariaDb(),
    ]);
    scratch = createScratchDir('pitr-binlog');
  });
  after(async () => {
    await primary?.stop();
    if (scratch !== undefined) await removeScratchDir(scratch);
  });

  for (const kind of TARGETS) {
    it(`${kind}: rolls a dump forward to T: orders before T are there, orders after T are not, even when the archiver was killed in between`, async () => {
      const target = await freshTarget(kind, scratch);
      const shopUrl = await primary.createDatabase('shop');
      await mysqlQuery(shopUrl, 'CREATE TABLE orders (id VARCHAR(20) PRIMARY KEY, created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
      await mysqlQuery(shopUrl, "INSERT INTO orders (id) VALUES ('base-1')");
      const failures: string[] = [];
      const archiver = new BinlogArchiver({
        databaseUrl: primary.rootUrl,
        target,
        spoolDir: join(scratch, `spool-${targetCount}`),
        syncIntervalMs: 250,
        restartDelayMs: 300,
        onFailure: (reason) => failures.push(reason),
      });
      await archiver.start();
      try {
        const backup = await logicalBackup(shopUrl);

        await mysqlQuery(shopUrl, "INSERT INTO orders (id) VALUES ('A-1'), ('A-2')");
        // A second binlog file: the replay must span files, with --start-position on the first only.
        await mysqlQuery(primary.rootUrl, 'FLUSH BINARY LOGS');
        await mysqlQuery(shopUrl, "INSERT INTO orders (id) VALUES ('A-3')");
        await pastASecond();
        const T = new Date();
        await pastASecond();

        const killed = archiver.status().pid;
        assert.ok(killed !== undefined, 'mariadb-binlog runs');
        process.kill(killed, 'SIGKILL');
        await mysqlQuery(shopUrl, "INSERT INTO orders (id) VALUES ('B-1')");
        await eventually('the archiver restarted mariadb-binlog', () => archiver.status().restarts === 1 && archiver.status().running);
        await mysqlQuery(shopUrl, "INSERT INTO orders (id) VALUES ('B-2')");
        const afterB = new Date();
        await eventually('the archive holds everything up to after B', () => (archiver.status().syncedAt?.getTime() ?? 0) > afterB.getTime());
        assert.ok(failures.some((reason) => /SIGKILL/.test(reason)), `the kill was reported: ${failures.join('; ')}`);

        // Restored under another name, as a drill does: the events are rewritten to it.
        const toT = await restoreServer.createDatabase('restored_t');
        await new MysqlDumpEngine().restore(Readable.from([backup.dump]), toT);
        const replayed = await replayBinlogs({ target, from: backup.position, until: T, databaseUrl: toT, sourceDatabase: databaseName(shopUrl) });
        assert.deepEqual(await mysqlOrderIds(toT), ['A-1', 'A-2', 'A-3', 'base-1']);
        assert.equal(replayed.files.length, 2);
        assert.ok(replayed.lastTransactionAt !== undefined && replayed.lastTransactionAt < T);

        // The same backup rolled forward past B: the archiver captured what was written while it was down.
        await pastASecond();
        const now = new Date();
        await eventually('the archive is current up to now', () => (archiver.status().syncedAt?.getTime() ?? 0) >= now.getTime());
        const toNow = await restoreServer.createDatabase('restored_now');
        await new MysqlDumpEngine().restore(Readable.from([backup.dump]), toNow);
        await replayBinlogs({ target, from: backup.position, until: now, databaseUrl: toNow, sourceDatabase: databaseName(shopUrl) });
        assert.deepEqual(await mysqlOrderIds(toNow), ['A-1', 'A-2', 'A-3', 'B-1', 'B-2', 'base-1']);
      } finally {
        await archiver.stop();
        closeTarget(target);
      }
    });
  }

  it('refuses to roll forward past what the archive is known to hold', async () => {
    const target = await freshTarget('local folder', scratch);
    const archiver = new BinlogArchiver({ databaseUrl: primary.rootUrl, target, spoolDir: join(scratch, `spool-${targetCount}`), syncIntervalMs: 100 });
    await archiver.start();
    await eventually('the archive is current', () => archiver.status().syncedAt !== undefined);
    await archiver.stop();
    const { File: file } = (await mysqlQuery(primary.rootUrl, 'SHOW MASTER STATUS'))[0] as { File: string };
    const later = new Date(Date.now() + 3_600_000);
    await assert.rejects(
      replayBinlogs({ target, from: { kind: 'binlog', file, position: 4 }, until: later, databaseUrl: primary.urlFor('nothing_here') }),
      /is known to be complete only up to .* before --until/,
    );
  });
});

async function pgQuery(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

async function pgOrderIds(url: string): Promise<string[]> {
  return (await pgQuery(url, 'SELECT id FROM orders ORDER BY id')).map((row) => String(row.id));
}

describe('point-in-time recovery: PostgreSQL WAL', () => {
  let primary: DatabaseServer;
  let scratch: string;

  before(async () => {
    primary = await startPostgres({ config: { wal_level: 'replica', max_wal_senders: 5, max_replication_slots: 5 } });
    scratch = createScratchDir('pitr-wal');
    // The restored cluster runs as the postgres user, which must reach its data directory.
    await chmod(scratch, 0o755);
  });
  after(async () => {
    await primary?.stop();
    if (scratch !== undefined) await removeScratchDir(scratch);
  });

  for (const kind of TARGETS) {
    it(`${kind}: restores a base backup to T: orders before T are there, orders after T are not, even when the archiver was killed in between`, async () => {
      const target = await freshTarget(kind, scratch);
      const shopUrl = await primary.createDatabase('shop');
      await pgQuery(shopUrl, "CREATE TABLE orders (id text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now()); INSERT INTO orders (id) VALUES ('base-1')");
      const failures: string[] = [];
      const archiver = new WalArchiver({
        databaseUrl: primary.rootUrl,
        target,
        spoolDir: join(scratch, `spool-${targetCount}`),
        slot: 'seckill_test_archiver',
        syncIntervalMs: 250,
        restartDelayMs: 300,
        onFailure: (reason) => failures.push(reason),
      });
      await archiver.start();
      try {
        const base = await takeBaseBackup({ databaseUrl: primary.rootUrl, target });
        await assert.rejects(
          restoreToTime({ target, baseBackupKey: base.key, until: new Date(Date.parse(base.startedAt) - 60_000), dataDir: join(scratch, 'never'), port: await freePort() }),
          /is before base backup .* was consistent/,
        );

        await pgQuery(shopUrl, "INSERT INTO orders (id) VALUES ('A-1'), ('A-2')");
        // A completed segment as well as the .partial one: replay must span both.
        await pgQuery(primary.rootUrl, 'SELECT pg_switch_wal()');
        await pgQuery(shopUrl, "INSERT INTO orders (id) VALUES ('A-3')");
        await pastASecond();
        const T = new Date();
        await pastASecond();

        const killed = archiver.status().pid;
        assert.ok(killed !== undefined, 'pg_receivewal runs');
        process.kill(killed, 'SIGKILL');
        await pgQuery(shopUrl, "INSERT INTO orders (id) VALUES ('B-1')");
        await eventually('the archiver restarted pg_receivewal', () => archiver.status().restarts === 1 && archiver.status().running);
        await pgQuery(shopUrl, "INSERT INTO orders (id) VALUES ('B-2')");
        const afterB = new Date();
        await eventually('the archive holds everything up to after B', () => (archiver.status().syncedAt?.getTime() ?? 0) > afterB.getTime());
        assert.ok(failures.some((reason) => /SIGKILL/.test(reason)), `the kill was reported: ${failures.join('; ')}`);

        const toT = await restoreToTime({ target, baseBackupKey: base.key, until: T, dataDir: join(scratch, `restored-t-${targetCount}`), port: await freePort() });
        try {
          assert.deepEqual(await pgOrderIds(toT.urlFor(databaseName(shopUrl))), ['A-1', 'A-2', 'A-3', 'base-1']);
          assert.equal(toT.stoppedAtTarget, true);
          assert.ok(toT.lastTransactionAt !== undefined && toT.lastTransactionAt < T);
          // Promoted: the restored copy takes writes.
          await pgQuery(toT.urlFor(databaseName(shopUrl)), "INSERT INTO orders (id) VALUES ('after-restore')");
        } finally {
          await toT.stop();
        }

        // After B nothing more is committed: PostgreSQL finds no commit past the target and the whole archive is replayed instead.
        const now = new Date();
        await eventually('the archive is current up to now', () => (archiver.status().syncedAt?.getTime() ?? 0) >= now.getTime());
        const toNow = await restoreToTime({ target, baseBackupKey: base.key, until: now, dataDir: join(scratch, `restored-now-${targetCount}`), port: await freePort() });
        try {
          assert.deepEqual(await pgOrderIds(toNow.urlFor(databaseName(shopUrl))), ['A-1', 'A-2', 'A-3', 'B-1', 'B-2', 'base-1']);
          assert.equal(toNow.stoppedAtTarget, false);
        } finally {
          await toNow.stop();
        }
      } finally {
        await archiver.stop();
        closeTarget(target);
      }
    });
  }
});
