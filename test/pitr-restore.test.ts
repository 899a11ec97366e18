import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { startLogArchiving, runBaseBackup } from '../src/backup/log-archiving.js';
import type { LogArchiving } from '../src/backup/log-archiving.js';
import { runBackup } from '../src/backup/index.js';
import { loadConfig } from '../src/config/index.js';
import type { SeckillConfig } from '../src/config/index.js';
import { openDatabase } from '../src/db/open-database.js';
import { runCli } from './support/app-process.js';
import type { DatabaseServer } from './support/database-server.js';
import { startMariaDb } from './support/mariadb-server.js';
import { startPostgres } from './support/postgres-server.js';

const ENGINES = [
  {
    name: 'MariaDB binlog',
    start: () => startMariaDb({ config: { log_bin: 'mariadb-bin', binlog_format: 'ROW', server_id: 1 } }),
  },
  {
    name: 'PostgreSQL WAL',
    start: () => startPostgres({ config: { wal_level: 'replica', max_wal_senders: 5, max_replication_slots: 5 } }),
  },
] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const engine of ENGINES) {
  describe(`${engine.name}: seckill restore --until`, () => {
    let server: DatabaseServer;
    let folder: string;
    let config: SeckillConfig;
    let archiving: LogArchiving | undefined;

    before(async () => {
      server = await engine.start();
      folder = mkdtempSync(join(tmpdir(), 'seckill-pitr-restore-'));
      config = loadConfig({
        overrides: {
          dataDir: folder,
          databaseUrl: await server.createDatabase('pitr_live'),
          backupTargets: `local=${join(folder, 'backups')}`,
          backupKey: randomBytes(32).toString('hex'),
          pitrArchive: true,
          pitrSyncIntervalMs: 200,
        },
      });
    });
    after(async () => {
      await archiving?.stop();
      await server?.stop();
      rmSync(folder, { recursive: true, force: true });
    });

    it('restores the orders written before T and none written after', async () => {
      const db = await openDatabase(config.databaseUrl);
      try {
        assert.equal((await db.migrate()).error, undefined);
        const sale = await db.createSale({ name: 'pitr', stock: 1000, startsAt: 0, endsAt: Date.now() + 3_600_000, paymentWindowSeconds: 900, now: Date.now() });
        archiving = await startLogArchiving(config, pino({ level: 'silent' }));
        if (config.databaseUrl.startsWith('postgres')) await runBaseBackup(config);
        const backup = await runBackup(config, { db: true, files: false }, () => undefined);
        assert.ok(backup.manifest, `backup failed: ${backup.error}`);

        const order = (prefix: string, i: number) => ({ orderId: `${sale.id}-${prefix}${String(i).padStart(24, '0')}`.slice(0, 40), userId: `${prefix}-${i}`, createdAt: Date.now() });
        const before = Array.from({ length: 50 }, (_, i) => order('a', i));
        await db.persistOrders(sale.id, before, 900);
        await sleep(1100); // binlog times have second resolution
        const t = new Date();
        await sleep(1100);
        const afterT = Array.from({ length: 30 }, (_, i) => order('b', i));
        await db.persistOrders(sale.id, afterT, 900);
        const written = Date.now();
        for (let i = 0; i < 150 && (archiving!.status().syncedAt?.getTime() ?? 0) <= written; i++) await sleep(100);
        assert.ok((archiving!.status().syncedAt?.getTime() ?? 0) > written, 'the archive caught up with the writes after T');

        const scratch = await server.createDatabase('pitr_restored');
        const env = {
          SECKILL_DATA_DIR: folder,
          SECKILL_DATABASE_URL: config.databaseUrl,
          SECKILL_BACKUP_TARGETS: `local=${join(folder, 'backups')}`,
          SECKILL_BACKUP_KEY: config.backupKey,
        };
        const run = await runCli(['restore', backup.manifest.id, '--to', scratch, '--until', t.toISOString(), '--json'], env);
        assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);

        const restored = await openDatabase(scratch);
        try {
          const ids = new Set<string>();
          for (const o of [...before, ...afterT]) if (await restored.getOrder(o.orderId)) ids.add(o.orderId);
          assert.equal(before.filter((o) => ids.has(o.orderId)).length, before.length, 'every order written before T is restored');
          assert.equal(afterT.filter((o) => ids.has(o.orderId)).length, 0, 'no order written after T is restored');
          assert.equal((await restored.getSale(sale.id))!.sold, before.length, 'and the sale counts exactly those');
        } finally {
          await restored.close();
        }
      } finally {
        await db.close();
      }
    });
  });
}
