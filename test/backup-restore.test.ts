import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { listBackups, readText } from '../src/backup/backup-catalog.js';
import { keyIdOf } from '../src/backup/backup-key.js';
import type { BackupManifest } from '../src/backup/backup-manifest.js';
import type { BackupTarget } from '../src/backup/backup-target.js';
import { restoreBackup } from '../src/backup/restore-backup.js';
import { restoreFiles } from '../src/backup/restore-files.js';
import { runBackup } from '../src/backup/run-backup.js';
import { closeTarget, openTarget } from '../src/backup/targets/open-target.js';
import { verifyBackup } from '../src/backup/verify-backup.js';
import { loadConfig } from '../src/config/config.js';
import type { SeckillConfig } from '../src/config/config.js';
import { checkInvariants, countRows, snapshotSales } from '../src/backup/database-census.js';
import { openDatabase } from '../src/db/open-database.js';
import type { SeckillDatabase } from '../src/db/seckill-database.js';
import { startS3Server } from './support/s3-server.js';
import type { S3Server } from './support/s3-server.js';
import { createScratchDir } from './support/scratch-dir.js';
import { freshDatabaseUrl } from './support/servers.js';

const KINDS = ['sqlite', 'mysql', 'postgres'] as const;
const TARGETS = ['local', 's3'] as const;
type TargetKind = (typeof TARGETS)[number];

const KEY_HEX = randomBytes(32).toString('hex');
const KEY_ID = keyIdOf(Buffer.from(KEY_HEX, 'hex'));

let s3: S3Server;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3?.stop();
});

/** A configuration backing up `databaseUrl` and one small file set to one target of the kind asked for. */
function configFor(databaseUrl: string, target: TargetKind, overrides: Partial<Record<keyof SeckillConfig, unknown>> = {}): SeckillConfig {
  const dataDir = createScratchDir('backup-data');
  const appDir = join(dataDir, 'app');
  mkdirSync(join(appDir, 'dist'), { recursive: true });
  writeFileSync(join(appDir, 'seckill.json'), '{"port": 8080}\n');
  writeFileSync(join(appDir, 'dist', 'main.js'), 'console.log("seckill");\n');
  const url = target === 'local' ? join(dataDir, 'backups') : s3.targetUrl(`test-${randomBytes(4).toString('hex')}`);
  return loadConfig({
    overrides: {
      dataDir,
      databaseUrl,
      backupKey: KEY_HEX,
      backupTargets: [{ name: target === 'local' ? 'local' : 'offsite', url }],
      backupFileSets: [{ name: 'app', root: appDir, include: ['**'], exclude: [] }],
      ...overrides,
    },
  });
}

async function migrated(url: string): Promise<SeckillDatabase> {
  const db = await openDatabase(url, { poolSize: 4 });
  const outcome = await db.migrate();
  assert.equal(outcome.error, undefined, `migration failed: ${outcome.error?.stack}`);
  return db;
}

/**
 * Buyers keep coming: batches of new orders, some paid, some cancelled, until `stop` is
 * set. Resolves with how many orders it sent.
 */
async function sellUntil(db: SeckillDatabase, saleId: number, prefix: string, state: { stop: boolean; sent: number }): Promise<void> {
  while (!state.stop) {
    const batch = Array.from({ length: 20 }, (_, i) => ({ orderId: `${prefix}-o${state.sent + i}`, userId: `${prefix}-u${state.sent + i}`, createdAt: Date.now() }));
    await db.persistOrders(saleId, batch, 900);
    await db.payOrder(`${prefix}-o${state.sent}`, Date.now());
    if (state.sent % 100 === 0) await db.cancelOrder(`${prefix}-o${state.sent + 1}`, Date.now());
    state.sent += batch.length;
    // SQLite answers without I/O: without a pause this loop would never let the backup run.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A live sale with orders pouring in while `work` runs (a backup, say). */
async function whileSelling<T>(db: SeckillDatabase, work: () => Promise<T>): Promise<{ result: T; sent: number }> {
  const now = Date.now();
  const sale = await db.createSale({ name: 'lamp', stock: 1_000_000, startsAt: now - 1000, endsAt: now + 3_600_000, paymentWindowSeconds: 900, now });
  await db.createSale({ name: 'chair', stock: 5, startsAt: now - 1000, endsAt: now + 3_600_000, paymentWindowSeconds: 900, now });
  const state = { stop: false, sent: 0 };
  const selling = sellUntil(db, sale.id, randomBytes(3).toString('hex'), state);
  while (state.sent < 200) await new Promise((resolve) => setTimeout(resolve, 5));
  try {
    return { result: await work(), sent: state.sent };
  } finally {
    state.stop = true;
    await selling;
  }
}

async function readAll(target: BackupTarget, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await target.get(key)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Replaces a stored file through the target's own API (works for folders and S3 alike). */
async function overwrite(target: BackupTarget, key: string, bytes: Buffer): Promise<void> {
  await target.put(key, Readable.from([bytes]));
}

for (const kind of KINDS) {
  for (const targetKind of TARGETS) {
    describe(`${kind} → ${targetKind}: backup and restore`, { timeout: 120_000 }, () => {
      let config: SeckillConfig;
      let target: BackupTarget;
      let manifest: BackupManifest;
      let live: SeckillDatabase;

      before(async () => {
        const url = await freshDatabaseUrl(kind);
        live = await migrated(url);
        config = configFor(url, targetKind);
        target = openTarget(config.backupTargets[0]!);
      });
      after(async () => {
        await live?.close();
        if (target) closeTarget(target);
      });

      it('takes a backup while orders are written, and it restores into an empty database with exactly the manifest\'s row counts', async () => {
        const events: string[] = [];
        const { result, sent } = await whileSelling(live, () => runBackup(config, { db: false, files: false }, (e) => events.push(e.step)));
        assert.equal(result.error, undefined, result.error);
        assert.deepEqual(result.warnings, [], 'the row counts come from the dump itself, not from the live database');
        assert.ok(result.manifest);
        manifest = result.manifest;
        assert.deepEqual(result.perTarget.map((t) => t.ok), [true]);
        assert.deepEqual(manifest.contents, { database: true, files: true });
        assert.deepEqual(manifest.artifacts.map((a) => a.role), ['database', 'files']);
        assert.ok(manifest.artifacts.every((a) => a.encryption?.keyId === KEY_ID));
        assert.ok(!JSON.stringify(manifest).includes(KEY_HEX), 'the key is never in the manifest');
        assert.ok(events.includes('check') && events.includes('verify') && events.includes('manifest'));
        const database = manifest.database!;
        assert.equal(database.engine, kind);
        assert.ok(database.rowCounts.orders! >= 200, `the dump holds the orders written before it: ${JSON.stringify(database.rowCounts)}`);
        assert.ok(database.rowCounts.orders! <= sent, 'and none from the future');

        const restoreUrl = await freshDatabaseUrl(kind);
        const restored = await restoreBackup(config, { id: manifest.id, to: restoreUrl });
        assert.equal(restored.error, undefined, restored.error);
        assert.equal(restored.ok, true);
        assert.ok(restored.plan.length >= 3 && restored.plan[0]!.includes(manifest.id), 'it said what it would do');
        assert.ok(restored.durationMs > 0);
        assert.deepEqual(await countRows(restoreUrl), database.rowCounts);
        assert.deepEqual(await snapshotSales(restoreUrl), database.sales);
        assert.equal((await checkInvariants(restoreUrl)).ok, true);
      });

      it('extracts the file sets beside the live files, byte for byte', async () => {
        const folder = join(createScratchDir('restored-files'), 'out');
        const result = await restoreFiles(config, { id: manifest.id, to: folder });
        assert.equal(result.error, undefined, result.error);
        const { readFileSync } = await import('node:fs');
        assert.equal(readFileSync(join(folder, 'app', 'dist', 'main.js'), 'utf8'), 'console.log("seckill");\n');
        assert.equal(readFileSync(join(folder, 'app', 'seckill.json'), 'utf8'), '{"port": 8080}\n');
      });

      it('refuses to restore into a database that is not empty, or into the live primary, and changes nothing', async () => {
        const busyUrl = await freshDatabaseUrl(kind);
        const busy = await migrated(busyUrl);
        try {
          await busy.createSale({ name: 'kept', stock: 3, startsAt: 0, endsAt: 1, paymentWindowSeconds: 60, now: 0 });
          const before = { rows: await countRows(busyUrl), sales: await snapshotSales(busyUrl) };
          const refused = await restoreBackup(config, { id: manifest.id, to: busyUrl });
          assert.equal(refused.ok, false);
          assert.equal(refused.refused, true);
          assert.match(refused.error!, /not empty/);
          assert.deepEqual({ rows: await countRows(busyUrl), sales: await snapshotSales(busyUrl) }, before);
        } finally {
          await busy.close();
        }
        // The primary spelled differently: another scheme alias, host alias and explicit port.
        const primary = config.databaseUrl
          .replace('mysql://', 'mariadb://')
          .replace('postgres://', 'postgresql://')
          .replace('127.0.0.1', 'localhost');
        const intoPrimary = await restoreBackup(config, { id: manifest.id, to: primary });
        assert.equal(intoPrimary.refused, true);
        assert.match(intoPrimary.error!, /live primary/);
      });

      it('a flipped byte in any artifact fails verification, naming that file', async () => {
        assert.equal((await verifyBackup(target, manifest.id, { key: undefined })).ok, false, 'without the key decryption cannot be checked');
        const key = { key: Buffer.from(KEY_HEX, 'hex'), id: KEY_ID, source: 'backupKey' as const, generated: false };
        assert.equal((await verifyBackup(target, manifest.id, { key })).ok, true);
        for (const artifact of manifest.artifacts) {
          const fileKey = `${manifest.id}/${artifact.name}`;
          const original = await readAll(target, fileKey);
          const damaged = Buffer.from(original);
          damaged[Math.floor(damaged.length / 2)]! ^= 0x40;
          await overwrite(target, fileKey, damaged);
          const verdict = await verifyBackup(target, manifest.id, { key });
          assert.equal(verdict.ok, false);
          const broken = verdict.artifacts.filter((a) => !a.ok);
          assert.deepEqual(broken.map((a) => a.name), [artifact.name]);
          assert.deepEqual(broken[0]!.problems.map((p) => p.check), ['sha256', 'authentication']);
          assert.match(verdict.error!, new RegExp(`${artifact.name.replace(/\./g, '\\.')}: sha256 of the stored bytes differs`));
          await overwrite(target, fileKey, original);
        }
        assert.equal((await verifyBackup(target, manifest.id, { key })).ok, true);
      });

      if (kind === 'sqlite') {
        it('a wrong key gives a clear error naming both key ids, for verify and for restore', async () => {
          const other = randomBytes(32);
          const otherKey = { key: other, id: keyIdOf(other), source: 'backupKey' as const, generated: false };
          const verdict = await verifyBackup(target, manifest.id, { key: otherKey });
          assert.equal(verdict.ok, false);
          assert.match(verdict.error!, new RegExp(`wrong key \\(key id ${otherKey.id}, manifest says ${KEY_ID}\\)`));
          const wrongConfig = loadConfig({ overrides: { ...config, backupKey: other.toString('hex') } as unknown as Record<string, unknown> });
          const restored = await restoreBackup(wrongConfig, { id: manifest.id, to: await freshDatabaseUrl(kind) });
          assert.equal(restored.ok, false);
          assert.match(restored.error!, /wrong key \(key id [0-9a-f]{16}, manifest says/);
        });

        it('an artifact cut short fails verification and the restore, and says so', async () => {
          const artifact = manifest.artifacts[0]!;
          const fileKey = `${manifest.id}/${artifact.name}`;
          const original = await readAll(target, fileKey);
          await overwrite(target, fileKey, original.subarray(0, original.length - 100));
          try {
            const key = { key: Buffer.from(KEY_HEX, 'hex'), id: KEY_ID, source: 'backupKey' as const, generated: false };
            const verdict = await verifyBackup(target, manifest.id, { key });
            assert.equal(verdict.ok, false);
            assert.ok(verdict.artifacts[0]!.problems.some((p) => p.check === 'size' && /truncated/.test(p.message)), JSON.stringify(verdict.artifacts[0]));
            const restoreUrl = await freshDatabaseUrl(kind);
            const restored = await restoreBackup(config, { id: manifest.id, to: restoreUrl });
            assert.equal(restored.ok, false);
            assert.match(restored.error!, /failed a check during the restore/);
          } finally {
            await overwrite(target, fileKey, original);
          }
        });

        it('a half-uploaded backup (no manifest) is listed as incomplete, never as a backup, and cannot be restored', async () => {
          const id = manifest.id.replace(/-[0-9a-f]{4}$/, '-dead');
          await overwrite(target, `${id}/database.sqlite.zst.enc`, Buffer.from('part of an upload'));
          if (targetKind === 's3') {
            // A multipart upload that never completed: the object must not exist at all.
            const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
            const prefix = decodeURIComponent(new URL(config.backupTargets[0]!.url).pathname.slice(1));
            const upload = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: `${prefix}/${id}/manifest.json` }));
            await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: `${prefix}/${id}/manifest.json`, UploadId: upload.UploadId, PartNumber: 1, Body: Buffer.from('{}') }));
            client.destroy();
          }
          const listing = await listBackups(target);
          assert.deepEqual(listing.backups.map((b) => b.id), [manifest.id]);
          assert.deepEqual(listing.incomplete.map((i) => i.id), [id]);
          const restored = await restoreBackup(config, { id, to: await freshDatabaseUrl(kind) });
          assert.match(restored.error!, /incomplete/);
          await target.delete([`${id}/database.sqlite.zst.enc`]);
        });

        it('a target that fails gets no manifest and keeps nothing, while the others complete', async () => {
          const blocker = join(createScratchDir('broken-target'), 'not-a-folder');
          writeFileSync(blocker, 'a file where a folder should be');
          const twoTargets = loadConfig({
            overrides: { ...config, backupTargets: [...config.backupTargets, { name: 'broken', url: join(blocker, 'backups') }] } as unknown as Record<string, unknown>,
          });
          const result = await runBackup(twoTargets, { db: true, files: false });
          assert.ok(result.manifest, 'the healthy target holds the backup');
          assert.match(result.error!, /complete on (local|offsite) but failed on broken/);
          assert.deepEqual(result.perTarget.map((t) => [t.target, t.ok]), [[config.backupTargets[0]!.name, true], ['broken', false]]);
          assert.deepEqual(JSON.parse(await readText(target, `${result.manifest.id}/manifest.json`)).id, result.manifest.id);
        });

        it('refuses point-in-time recovery of a SQLite backup (it has no change log) before anything is restored', async () => {
          const restoreUrl = await freshDatabaseUrl(kind);
          const result = await restoreBackup(config, { id: manifest.id, to: restoreUrl, until: new Date().toISOString() });
          assert.equal(result.ok, false);
          assert.match(result.error!, /point-in-time recovery .* is not possible for backup .*: sqlite keeps no change log to replay/);
          assert.deepEqual(result.plan, []);
        });
      }
    });
  }
}
