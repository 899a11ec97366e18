import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { listDrillReports, openTarget, readDrillReport } from '../src/backup/index.js';
import { runBackup } from '../src/backup/run-backup.js';
import { drillCommand } from '../src/cli/drill-commands.js';
import type { SeckillConfig } from '../src/config/config.js';
import { runDrill } from '../src/drill/index.js';
import type { DrillReport } from '../src/drill/index.js';
import { inParallel } from './support/app-client.js';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { freshDatabaseUrl, sharedMariaDb, sharedPostgres } from './support/servers.js';

const ENGINES = ['sqlite', 'mysql', 'postgres'] as const;
const silent = pino({ level: 'silent' });
const BUYERS = 1000;
const STOCK = 600;

/** A webhook receiver on 127.0.0.1 that records the alerts it is sent. */
async function startReceiver() {
  const received: { alert: string; summary: string; details: Record<string, unknown> }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push(JSON.parse(body) as (typeof received)[number]);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Scratch databases the drill left on a server (it must leave none). */
async function leftoverScratchDatabases(kind: 'mysql' | 'postgres'): Promise<string[]> {
  if (kind === 'mysql') {
    const url = new URL((await sharedMariaDb()).rootUrl);
    const connection = await createConnection({ host: url.hostname, port: Number(url.port), user: 'root' });
    try {
      const [rows] = await connection.query("show databases like 'seckill\\_drill\\_%'");
      return (rows as Record<string, string>[]).map((row) => Object.values(row)[0]);
    } finally {
      await connection.end();
    }
  }
  const client = new pg.Client({ connectionString: (await sharedPostgres()).rootUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("select datname from pg_database where datname like 'seckill\\_drill\\_%'");
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

/**
 * Rushes a sale with BUYERS buyers (a third of the winners pay, some cancel) and takes a
 * backup while the purchases are still coming in.
 */
async function backupDuringRush(app: TestNode): Promise<{ backupId: string; accepted: number }> {
  const { client } = app;
  const saleId = await client.createSale(STOCK);
  const quiet = await client.createSale(5); // a sale nobody buys: its snapshot must survive too
  assert.ok(quiet > saleId);
  const users = Array.from({ length: BUYERS }, (_, i) => `buyer-${i}`);
  let answered = 0;
  let backupStarted: Promise<Awaited<ReturnType<typeof runBackup>>> | undefined;
  const answers = await inParallel(users, 40, async (user, i) => {
    const answer = await client.purchase(saleId, user);
    answered += 1;
    // The backup starts a fifth of the way in, and purchases go on while it runs.
    if (answered === BUYERS / 5) backupStarted = runBackup(app.config, { db: true, files: false });
    if (answer.status === 202 && answer.body.orderId) {
      if (i % 3 === 0) await client.request('POST', `/api/orders/${answer.body.orderId}/pay`, { token: client.tokenFor(user) });
      else if (i % 11 === 0) await client.request('POST', `/api/orders/${answer.body.orderId}/cancel`, { token: client.tokenFor(user) });
    }
    return answer;
  });
  const result = await backupStarted!;
  assert.equal(result.error, undefined, `the backup failed: ${result.error}`);
  assert.deepEqual(result.warnings, [], 'the backup counted its own dump');
  assert.ok(result.manifest, 'the backup is complete');
  const orders = result.manifest.database!.rowCounts.orders;
  assert.ok(orders > 0, `the backup caught the rush in progress (${orders} orders)`);
  return { backupId: result.manifest.id, accepted: answers.filter((a) => a.status === 202).length };
}

/** Backup settings of a test node: a local folder target, a key, the test's webhook. */
function backupSettings(targetDir: string, webhook: string): Partial<Record<keyof SeckillConfig, unknown>> {
  return { backupTargets: [{ name: 'local', url: targetDir }], backupKey: randomBytes(32).toString('hex'), alertWebhookUrl: webhook };
}

for (const engine of ENGINES) {
  describe(`${engine}: drill`, () => {
    let app: TestNode;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let targetDir: string;

    before(async () => {
      receiver = await startReceiver();
      targetDir = mkdtempSync(join(tmpdir(), 'seckill-drill-target-'));
      app = await startTestNode({
        databaseUrl: await freshDatabaseUrl(engine),
        rateLimitPerUser: 0,
        ...backupSettings(targetDir, receiver.url),
      });
    });
    after(async () => {
      await app?.stop();
      await receiver?.close();
      rmSync(targetDir, { recursive: true, force: true });
    });

    it('restores a backup taken while 1,000 buyers purchase, and every check passes', async (t) => {
      const { backupId } = await backupDuringRush(app);
      const steps: string[] = [];
      const report = await runDrill(app.config, { log: silent }, (event) => steps.push(event.step));

      const failed = report.checks.filter((c) => !c.ok);
      assert.deepEqual(failed, [], `failed checks: ${JSON.stringify(failed, null, 2)}`);
      assert.equal(report.ok, true);
      assert.equal(report.backupId, backupId, 'the newest backup was drilled');
      assert.equal(report.engine, engine);
      const names = report.checks.map((c) => c.name);
      for (const name of ['checksums', 'restore', 'row-counts', 'engine-integrity', 'invariant: live orders ≤ stock (no oversell)', 'sale-snapshot', 'smoke-test']) {
        assert.ok(names.includes(name), `the report lists ${name}: ${names.join(', ')}`);
      }
      assert.match(report.checks.find((c) => c.name === 'row-counts')!.detail, /every table matches the manifest: sales 2, orders \d+/);
      assert.match(report.checks.find((c) => c.name === 'smoke-test')!.detail, /answered GET \/api\/sales\/:id for every sale \(2\)/);
      assert.ok(report.rtoMs > 0 && report.restoreMs! <= report.rtoMs);
      assert.ok(report.rpoSeconds! >= 0 && report.rpoSeconds! < 120);
      assert.deepEqual(report.scratch?.dropped, true);
      for (const step of ['pick', 'verify', 'scratch', 'restore', 'check', 'smoke-test', 'cleanup', 'report']) assert.ok(steps.includes(step), `progress reported the ${step} step`);

      if (engine === 'sqlite') assert.equal(existsSync(report.scratch!.location), false, 'the scratch file is gone');
      else assert.deepEqual(await leftoverScratchDatabases(engine), [], 'the scratch database was dropped');

      const target = openTarget({ name: 'local', url: targetDir });
      assert.deepEqual(await listDrillReports(target, backupId), [`${report.id}.json`, `${report.id}.md`]);
      const stored = JSON.parse(await readDrillReport(target, backupId, `${report.id}.json`)) as DrillReport;
      assert.equal(stored.ok, true);
      assert.match(await readDrillReport(target, backupId, `${report.id}.md`), /^# Drill .*: PASSED/);
      assert.deepEqual(receiver.received, [], 'a passing drill raises no alert');
      t.diagnostic(`${engine}: RTO ${report.rtoMs} ms (restore ${report.restoreMs} ms), RPO ${report.rpoSeconds?.toFixed(1)} s`);
    });
  });
}

describe('drill of a tampered backup', () => {
  let app: TestNode;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let targetDir: string;
  let backupId: string;

  before(async () => {
    receiver = await startReceiver();
    targetDir = mkdtempSync(join(tmpdir(), 'seckill-drill-target-'));
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), rateLimitPerUser: 0, ...backupSettings(targetDir, receiver.url) });
    const saleId = await app.client.createSale(50);
    await inParallel(Array.from({ length: 80 }, (_, i) => `buyer-${i}`), 20, (user) => app.client.purchase(saleId, user));
    const result = await runBackup(app.config, { db: true, files: false });
    assert.ok(result.manifest, result.error);
    backupId = result.manifest.id;
    // One flipped byte in the middle of the stored database dump.
    const artifact = result.manifest.artifacts.find((a) => a.role === 'database')!;
    const file = join(targetDir, backupId, artifact.name);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    writeFileSync(file, bytes);
  });
  after(async () => {
    await app?.stop();
    await receiver?.close();
    rmSync(targetDir, { recursive: true, force: true });
  });

  it('fails, names the failing checks, files the report and sends the alert webhook the failing drill', async () => {
    const report = await runDrill(app.config, { backupId, log: silent }, () => undefined);
    assert.equal(report.ok, false);
    const checksums = report.checks.find((c) => c.name === 'checksums')!;
    assert.equal(checksums.ok, false);
    assert.match(checksums.detail, /database\.sqlite.*sha256|database\.sqlite.*SHA-256/i, checksums.detail);
    assert.equal(report.checks.find((c) => c.name === 'restore')?.ok, false, 'the restore refuses the damaged dump');
    assert.equal(report.scratch?.dropped, true, 'the scratch copy is dropped after a failure too');

    assert.equal(receiver.received.length, 1);
    const [alert] = receiver.received;
    assert.equal(alert.alert, 'drill_failed');
    assert.match(alert.summary, new RegExp(`drill of backup ${backupId} on target local FAILED: checksums, restore`));
    assert.deepEqual((alert.details.failedChecks as { name: string }[]).map((c) => c.name).slice(0, 2), ['checksums', 'restore']);
    assert.equal(alert.details.backupId, backupId);

    const target = openTarget({ name: 'local', url: targetDir });
    const stored = JSON.parse(await readDrillReport(target, backupId, `${report.id}.json`)) as DrillReport;
    assert.equal(stored.ok, false, 'a failed drill is on record, so the backup never counts as drilled');
  });

  it('`seckill drill --json` prints the report and exits non-zero', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seckill-drill-cli-'));
    try {
      const file = join(dir, 'seckill.json');
      writeFileSync(file, JSON.stringify({
        dataDir: dir,
        databaseUrl: app.config.databaseUrl,
        backupTargets: app.config.backupTargets,
        backupKey: app.config.backupKey,
        alertWebhookUrl: receiver.url,
      }));
      let stdout = '';
      const code = await drillCommand({ config: file }, { backup: backupId, json: true }, { out: (text) => void (stdout += text), err: () => undefined });
      assert.equal(code, 1);
      const printed = JSON.parse(stdout) as DrillReport;
      assert.equal(printed.ok, false);
      assert.equal(printed.backupId, backupId);
      assert.equal(receiver.received.at(-1)?.alert, 'drill_failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a backup that does not exist as a failed drill, not a crash', async () => {
    const report = await runDrill(app.config, { backupId: '2020-01-01T00-00-00-000Z-dead', log: silent }, () => undefined);
    assert.equal(report.ok, false);
    assert.equal(report.checks[0]?.name, 'pick-backup');
    assert.match(report.checks[0].detail, /there is no backup 2020-01-01T00-00-00-000Z-dead on target local/);
  });
});
