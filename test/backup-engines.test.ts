import assert from 'node:assert/strict';
import { createReadStream, createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { BackupEngine } from '../src/backup/backup-engine.js';
import type { LogPosition } from '../src/backup/backup-manifest.js';
import {
  engineFor,
  MariabackupEngine,
  mariabackupCompatibility,
  mysqlDumpCompatibility,
  parseDumpPosition,
  postgresDumpCompatibility,
} from '../src/backup/engines/index.js';
import { startTool } from '../src/backup/engines/tool-process.js';
import { checkInvariants, countRows, isEmptyDatabase, snapshotSales } from '../src/backup/database-census.js';
import { openDatabase } from '../src/db/open-database.js';
import type { SeckillDatabase } from '../src/db/seckill-database.js';
import { ensureBinary, isRoot } from './support/binaries.js';
import type { DatabaseServer } from './support/database-server.js';
import { freePort } from './support/free-port.js';
import { startMariaDb } from './support/mariadb-server.js';
import { createScratchDir } from './support/scratch-dir.js';
import { ServerProcess } from './support/server-process.js';
import { freshDatabaseUrl, sharedMariaDb, sharedPostgres } from './support/servers.js';

const ENGINES = ['sqlite', 'mysql', 'postgres'] as const;
type EngineKind = (typeof ENGINES)[number];

const PAYMENT_WINDOW_SECONDS = 900;
/** Orders in the database before the dump starts; the writer keeps adding while it runs. */
const PRELOADED_ORDERS = 1_500;
const BATCH = 10;

/** A migrated database with one sale, and a writer that keeps persisting, paying and cancelling orders. */
interface RunningSale {
  readonly db: SeckillDatabase;
  readonly saleId: number;
  /** Stops the writer and closes the database; rejects with the writer's error, if any. */
  stop(): Promise<void>;
}

async function startSale(url: string): Promise<RunningSale> {
  const db = await openDatabase(url, { poolSize: 4 });
  const migration = await db.migrate();
  assert.equal(migration.error, undefined, `migration failed: ${migration.error?.stack}`);
  const now = Date.now();
  const sale = await db.createSale({
    name: 'lamp',
    stock: 100_000,
    startsAt: now - 1000,
    endsAt: now + 3_600_000,
    paymentWindowSeconds: PAYMENT_WINDOW_SECONDS,
    now,
  });
  let next = 0;
  const writeBatch = async (): Promise<void> => {
    const createdAt = Date.now();
    const batch = Array.from({ length: BATCH }, () => {
      next += 1;
      return { orderId: `order-${next}`, userId: `user-${next}`, createdAt };
    });
    const { inserted } = await db.persistOrders(sale.id, batch, PAYMENT_WINDOW_SECONDS);
    // Payments and cancellations change two tables (or sold) in one transaction each: a
    // dump that is not one snapshot catches some of them half-way.
    for (const [i, orderId] of inserted.entries()) {
      if (i % 3 === 0) await db.payOrder(orderId, Date.now());
      else if (i % 7 === 0) await db.cancelOrder(orderId, Date.now());
    }
  };
  while (next < PRELOADED_ORDERS) await writeBatch();
  let stopped = false;
  const writer = (async () => {
    while (!stopped) {
      await writeBatch();
      await yieldToEventLoop();
    }
  })();
  return {
    db,
    saleId: sale.id,
    async stop() {
      stopped = true;
      try {
        await writer;
      } finally {
        await db.close();
      }
    },
  };
}

/** Takes a dump into a file, reading it the way a backup would, and returns its position. */
async function dumpToFile(engine: BackupEngine, url: string, file: string): Promise<LogPosition | undefined> {
  const dump = await engine.dump(url);
  await pipeline(dump.stream, createWriteStream(file));
  return (await dump.finished).position;
}

function assertWithin(restored: Record<string, number>, low: Record<string, number>, high: Record<string, number>): void {
  for (const table of Object.keys(high)) {
    const count = restored[table] as number;
    assert.ok(
      count >= (low[table] as number) && count <= (high[table] as number),
      `${table}: restored ${count} rows, expected between ${low[table]} (before the dump) and ${high[table]} (after it)`,
    );
  }
}

function urlWithDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

for (const kind of ENGINES) {
  describe(`${kind}: backup engine`, () => {
    it('dumps while orders are being written, and the dump restores into an empty database as one consistent snapshot', async () => {
      const source = await freshDatabaseUrl(kind);
      const target = await freshDatabaseUrl(kind);
      const engine = engineFor(source, { mysqlMethod: 'logical' });
      const file = join(createScratchDir('dump'), `database${engine.extension}`);
      const sale = await startSale(source);
      let beforeDump: Record<string, number>;
      let afterDump: Record<string, number>;
      let position: LogPosition | undefined;
      try {
        beforeDump = await countRows(source);
        position = await dumpToFile(engine, source, file);
        afterDump = await countRows(source);
      } finally {
        await sale.stop();
      }
      assert.ok(afterDump.orders > beforeDump.orders, `orders were written while the dump ran (${beforeDump.orders} → ${afterDump.orders})`);

      await engine.restore(createReadStream(file), target);

      const restored = await countRows(target);
      assertWithin(restored, beforeDump, afterDump);
      const report = await checkInvariants(target);
      assert.ok(report.ok, `invariants of the restored copy: ${JSON.stringify(report.checks.filter((check) => !check.ok))}`);
      const [snapshot] = await snapshotSales(target);
      assert.equal(snapshot?.sold, snapshot?.liveOrders, 'sold equals live orders in the restored copy');
      assert.ok(restored.payments > 0 && restored.orders >= PRELOADED_ORDERS);

      if (kind === 'postgres') {
        assert.equal(position?.kind, 'wal');
        assert.match(position.kind === 'wal' ? position.lsn : '', /^[0-9A-F]+\/[0-9A-F]+$/);
      } else {
        // SQLite has no change log; the shared MariaDB writes no binlog, so there is no position and no error.
        assert.equal(position, undefined);
      }
    });

    it('refuses to restore into a database that already holds tables, and leaves it unchanged', async () => {
      const source = await freshDatabaseUrl(kind);
      const engine = engineFor(source, { mysqlMethod: 'logical' });
      const db = await openDatabase(source);
      try {
        await db.migrate();
        const now = Date.now();
        await db.createSale({ name: 'kettle', stock: 5, startsAt: now, endsAt: now + 60_000, paymentWindowSeconds: 60, now });
      } finally {
        await db.close();
      }
      const before = await countRows(source);
      const dump = await engine.dump(source);
      await assert.rejects(engine.restore(dump.stream, source), /already holds tables/);
      dump.stream.destroy();
      await dump.finished.catch(() => undefined);
      assert.deepEqual(await countRows(source), before);
    });

    it('reports the tool and server versions and finds them compatible', async () => {
      const url = await freshDatabaseUrl(kind);
      const check = await engineFor(url, { mysqlMethod: 'logical' }).check(url);
      assert.equal(check.compatible, true, check.reason);
      assert.match(check.tool.version, /^\d+\.\d+/);
      assert.match(check.server.version, /^\d+\.\d+/);
      if (kind === 'sqlite') assert.equal(check.tool.version, check.server.version);
    });

    it('rejects the dump of a database that does not exist with a message naming it', async () => {
      const existing = await freshDatabaseUrl(kind);
      const missing = kind === 'sqlite' ? `${existing}-missing.db` : urlWithDatabase(existing, 'no_such_database_here');
      const engine = engineFor(existing, { mysqlMethod: 'logical' });
      await assert.rejects(
        (async () => {
          const dump = await engine.dump(missing);
          dump.stream.resume();
          await dump.finished;
        })(),
        (error: Error) => {
          assert.match(error.message, kind === 'sqlite' ? /missing\.db: there is no SQLite database/ : /no_such_database_here/);
          return true;
        },
      );
    });
  });
}

describe('dump tools that fail', () => {
  it('mariadb-dump: a failing dump rejects with the tool\'s stderr, and a stored stream errors instead of ending', async () => {
    const mariadb = await sharedMariaDb();
    const url = await mariadb.createDatabase();
    const database = new URL(url).pathname.slice(1);
    const user = `limited_${process.pid}`;
    const admin = await createConnection({ host: '127.0.0.1', port: mariadb.port, user: 'root', database });
    try {
      await admin.query(`create user if not exists '${user}'@'%' identified by 's3cret pass'`);
      await admin.query(`grant all on \`${database}\`.* to '${user}'@'%'`);
      // A view whose table is gone: the server answers every dump of it with an error.
      await admin.query('create table doomed (id int primary key)');
      await admin.query('create view broken as select id from doomed');
      await admin.query('drop table doomed');
    } finally {
      await admin.end();
    }
    const limited = new URL(url);
    limited.username = user;
    limited.password = 's3cret pass';
    const engine = engineFor(limited.toString(), { mysqlMethod: 'logical' });
    const dump = await engine.dump(limited.toString());
    await assert.rejects(pipeline(dump.stream, createWriteStream(join(createScratchDir('dump'), 'failed.sql'))), /mariadb-dump exited with code \d+:.*broken/s);
    await assert.rejects(dump.finished, /broken/);
  });

  it('pg_dump: a failing dump rejects with the tool\'s stderr', async () => {
    const postgres = await sharedPostgres();
    const url = await postgres.createDatabase();
    const role = `limited_${process.pid}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`do $$ begin if not exists (select from pg_roles where rolname = '${role}') then create role ${role} login password 's3cret'; end if; end $$`);
      await admin.query('create table secrets (id int primary key)');
    } finally {
      await admin.end();
    }
    const limited = new URL(url);
    limited.username = role;
    limited.password = 's3cret';
    const dump = await engineFor(limited.toString(), { mysqlMethod: 'logical' }).dump(limited.toString());
    dump.stream.resume();
    await assert.rejects(dump.finished, /pg_dump exited with code 1:.*permission denied for table secrets/s);
  });

  it('a reader that stops reading kills the tool, and finished settles only after it exited', async () => {
    // Prints a first chunk, then stalls as a dump waiting on a slow server would.
    const running = startTool({ name: 'stalled-dump', command: '/bin/sh', args: ['-c', 'echo "-- first chunk"; exec sleep 60'], env: { PATH: '/usr/bin:/bin' } });
    await new Promise<void>((resolve) => running.stdout.once('data', () => resolve()));
    running.stdout.destroy();
    await assert.rejects(running.exited, /stalled-dump was killed by SIGTERM/);
  });

  it('a stream that ends after the tool failed carries the tool\'s stderr', async () => {
    const running = startTool({
      name: 'fake-dump',
      command: '/bin/sh',
      args: ['-c', 'echo "-- partial dump"; echo "fake-dump: Got error: 1049: Unknown database" >&2; exit 2'],
      env: { PATH: '/usr/bin:/bin' },
    });
    await assert.rejects(pipeline(running.stdout, createWriteStream('/dev/null')), /fake-dump exited with code 2: fake-dump: Got error: 1049/);
  });

  it('a dump tool printing through stdio arrives in large blocks, complete, when block-buffered', async () => {
    // `seq` prints line by line through stdio, as mariadb-dump does: 2.9 MB in small writes.
    const read = async (blockBufferedStdout: boolean): Promise<{ chunks: number; text: string }> => {
      const running = startTool({ name: 'seq', command: '/usr/bin/seq', args: ['1', '400000'], env: { PATH: '/usr/bin:/bin' }, blockBufferedStdout });
      const chunks: Buffer[] = [];
      for await (const chunk of running.stdout) chunks.push(chunk as Buffer);
      await running.exited;
      return { chunks: chunks.length, text: Buffer.concat(chunks).toString('latin1') };
    };
    const [plain, buffered] = [await read(false), await read(true)];
    assert.equal(buffered.text, plain.text, 'the same bytes either way');
    assert.equal(buffered.text.split('\n').length, 400_001);
    const averageKiB = buffered.text.length / buffered.chunks / 1024;
    assert.ok(averageKiB >= 32, `block-buffered chunks average ${averageKiB.toFixed(1)} KiB (${buffered.chunks} chunks; ${plain.chunks} without)`);
  });

  it('sqlite: refuses to restore bytes that are not a SQLite database', async () => {
    const target = await freshDatabaseUrl('sqlite');
    const engine = engineFor(target, { mysqlMethod: 'logical' });
    await assert.rejects(engine.restore(Readable.from([Buffer.from('-- MariaDB dump 10.19\nCREATE TABLE x (id int);\n')]), target), /not a SQLite database/);
    assert.equal(await isEmptyDatabase(target), true);
  });
});

describe('engineFor', () => {
  it('names what to install when the backup tool is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = createScratchDir('empty-path');
    try {
      // The sbin folders are still searched, and Debian puts none of these tools there.
      assert.throws(() => engineFor('mariadb://root@127.0.0.1/seckill', { mysqlMethod: 'physical' }), /mariabackup is not installed.*apt-get install mariadb-backup/);
      assert.throws(() => engineFor('mysql://root@127.0.0.1/seckill', { mysqlMethod: 'logical' }), /mariadb-dump or mysqldump is not installed.*apt-get install mariadb-client/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('refuses an unknown scheme, naming the ones it knows', () => {
    assert.throws(() => engineFor('mongodb://127.0.0.1/seckill', { mysqlMethod: 'logical' }), /no backup engine .*mongodb.*sqlite:, mysql:\/\//);
  });
});

describe('dump tool and server versions', () => {
  const MARIADB_10_11_TOOL = 'mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)';
  const MARIADB_10_5_TOOL = 'mysqldump  Ver 10.19 Distrib 10.5.23-MariaDB, for debian-linux-gnu (x86_64)';
  const MARIADB_11_TOOL = 'mariadb-dump from 11.4.2-MariaDB, client 10.19 for Linux (x86_64)';
  const MYSQL_5_7_TOOL = 'mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)';
  const MYSQL_8_TOOL = 'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)';

  it('refuses a MySQL 5.7 mysqldump against a MySQL 8.0 server', () => {
    const verdict = mysqlDumpCompatibility(MYSQL_5_7_TOOL, '8.0.36');
    assert.equal(verdict.compatible, false);
    assert.match(verdict.reason ?? '', /older than the MySQL 8\.0\.36 server.*install MySQL's client 8/);
  });

  it('refuses a MariaDB tool older than the MariaDB server\'s series', () => {
    const verdict = mysqlDumpCompatibility(MARIADB_10_5_TOOL, '10.11.6-MariaDB-0+deb12u1-log');
    assert.equal(verdict.compatible, false);
    assert.match(verdict.reason ?? '', /older than the MariaDB 10\.11 server; install mariadb-client 10\.11/);
  });

  it('refuses to mix the forks', () => {
    assert.equal(mysqlDumpCompatibility(MARIADB_10_11_TOOL, '8.0.36').compatible, false);
    assert.equal(mysqlDumpCompatibility(MYSQL_8_TOOL, '10.11.6-MariaDB').compatible, false);
  });

  it('accepts a tool of the server\'s series or newer', () => {
    assert.equal(mysqlDumpCompatibility(MARIADB_10_11_TOOL, '10.11.6-MariaDB-0+deb12u1-log').compatible, true);
    assert.equal(mysqlDumpCompatibility(MARIADB_10_11_TOOL, '5.5.5-10.6.16-MariaDB').compatible, true);
    assert.equal(mysqlDumpCompatibility(MARIADB_11_TOOL, '10.11.6-MariaDB').compatible, true);
    assert.equal(mysqlDumpCompatibility(MYSQL_8_TOOL, '8.0.36-0ubuntu0.22.04.1').compatible, true);
    assert.equal(mysqlDumpCompatibility(MYSQL_8_TOOL, '5.7.44-log').compatible, true);
  });

  it('refuses a version it cannot read rather than guessing', () => {
    assert.equal(mysqlDumpCompatibility('mysqldump: command not found', '10.11.6-MariaDB').compatible, false);
  });

  it('refuses pg_dump older than the server, naming the client package', () => {
    const verdict = postgresDumpCompatibility('pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)', 160_004);
    assert.equal(verdict.compatible, false);
    assert.match(verdict.reason ?? '', /pg_dump 15 cannot dump a PostgreSQL 16 server.*postgresql-client-16/);
    assert.equal(postgresDumpCompatibility('pg_dump (PostgreSQL) 15.19', 150_019).compatible, true);
    assert.equal(postgresDumpCompatibility('pg_dump (PostgreSQL) 16.2', 130_004).compatible, true);
    assert.equal(postgresDumpCompatibility('pg_dump (PostgreSQL) 9.6.24', 100_023).compatible, false);
    assert.equal(postgresDumpCompatibility('pg_dump (PostgreSQL) 15.19', 90_124).compatible, false);
  });

  it('lets mariabackup copy only a server of its own series', () => {
    const tool = 'mariabackup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)';
    assert.equal(mariabackupCompatibility(tool, '10.11.6-MariaDB-log').compatible, true);
    assert.match(mariabackupCompatibility(tool, '10.6.16-MariaDB').reason ?? '', /series 10\.6/);
    assert.match(mariabackupCompatibility(tool, '8.0.36').reason ?? '', /logical method/);
  });

  it('reads the binlog position and GTID a dump records', () => {
    const mariadb = [
      "-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;",
      "-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000001', MASTER_LOG_POS=960;",
      'INSERT INTO `orders` VALUES (1);',
      "-- SET GLOBAL gtid_slave_pos='0-1-3';",
    ].join('\n');
    assert.deepEqual(parseDumpPosition(mariadb), { kind: 'binlog', file: 'mariadb-bin.000001', position: 960, gtid: '0-1-3' });
    const mysql = "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n";
    assert.deepEqual(parseDumpPosition(mysql), { kind: 'binlog', file: 'binlog.000002', position: 157 });
    assert.equal(parseDumpPosition('-- MariaDB dump 10.19\nCREATE TABLE t (id int);\n'), undefined);
  });
});

describe('mysql with a binlog: logical and physical backups', () => {
  let server: DatabaseServer;

  before(async () => {
    server = await startMariaDb({ config: { 'log-bin': 'mariadb-bin', 'server-id': 1 } });
  });
  after(async () => {
    await server?.stop();
  });

  it('records the binlog file, position and GTID of the logical snapshot', async () => {
    const source = await server.createDatabase();
    const target = await server.createDatabase();
    const engine = engineFor(source, { mysqlMethod: 'logical' });
    const file = join(createScratchDir('dump'), 'database.sql');
    const sale = await startSale(source);
    let position: LogPosition | undefined;
    try {
      position = await dumpToFile(engine, source, file);
    } finally {
      await sale.stop();
    }
    assert.equal(position?.kind, 'binlog');
    assert.match(position.kind === 'binlog' ? position.file : '', /^mariadb-bin\.\d{6}$/);
    assert.ok(position.kind === 'binlog' && position.position > 0);
    assert.match(position.kind === 'binlog' ? position.gtid ?? '' : '', /^\d+-1-\d+$/);
    await engine.restore(createReadStream(file), target);
    assert.ok((await checkInvariants(target)).ok);
  });

  it('takes a physical backup while orders are written, and the prepared data folder starts as a consistent server', async () => {
    await ensureBinary('mariabackup', 'mariadb-backup');
    const source = await server.createDatabase();
    const engine = engineFor(source, { mysqlMethod: 'physical' });
    assert.ok(engine instanceof MariabackupEngine);
    const check = await engine.check(source);
    assert.equal(check.compatible, true, check.reason);
    const scratch = createScratchDir('mariabackup');
    const file = join(scratch, `database${engine.extension}`);
    const sale = await startSale(source);
    let beforeDump: Record<string, number>;
    let afterDump: Record<string, number>;
    let position: LogPosition | undefined;
    try {
      beforeDump = await countRows(source);
      position = await dumpToFile(engine, source, file);
      afterDump = await countRows(source);
    } finally {
      await sale.stop();
    }
    assert.equal(position?.kind, 'binlog');
    await assert.rejects(engine.restore(createReadStream(file), source), /mbstream -x.*mariabackup --prepare/s);

    const dataDir = join(scratch, 'restored');
    await engine.restoreDataDirectory(createReadStream(file), dataDir);
    const restoredServer = await startMariaDbOn(dataDir, scratch);
    try {
      const restored = urlWithDatabase(`mysql://root@127.0.0.1:${restoredServer.port}/`, new URL(source).pathname.slice(1));
      assertWithin(await countRows(restored), beforeDump, afterDump);
      const report = await checkInvariants(restored);
      assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));
    } finally {
      await restoredServer.process.stop();
    }
  });
});

/** Starts mariadbd on a restored data folder, on a free loopback port. */
async function startMariaDbOn(dataDir: string, scratch: string): Promise<{ port: number; process: ServerProcess }> {
  const mariadbd = await ensureBinary('mariadbd', 'mariadb-server');
  const port = await freePort();
  const cnf = join(scratch, 'restored.cnf');
  writeFileSync(
    cnf,
    [
      '[mariadbd]',
      `datadir=${dataDir}`,
      `socket=${join(scratch, 'restored.sock')}`,
      `pid-file=${join(scratch, 'restored.pid')}`,
      `log-error=${join(scratch, 'restored.err')}`,
      `port=${port}`,
      'bind-address=127.0.0.1',
      'skip-name-resolve',
      ...(isRoot() ? ['user=root'] : []),
      '',
    ].join('\n'),
  );
  const server = await ServerProcess.start({
    name: `restored mariadbd on port ${port}`,
    command: mariadbd,
    args: [`--defaults-file=${cnf}`],
    logFile: join(scratch, 'restored.out'),
    extraLogFiles: [join(scratch, 'restored.err')],
    env: { PATH: process.env.PATH, HOME: scratch },
    cwd: scratch,
    scratchDir: scratch,
  });
  try {
    await server.waitUntilReady(async () => {
      const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 });
      connection.destroy();
      return true;
    }, { timeoutMs: 60_000 });
  } catch (error) {
    await server.stop({ signal: 'SIGKILL' });
    throw error;
  }
  return { port, process: server };
}
