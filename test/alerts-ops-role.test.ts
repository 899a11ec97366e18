import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/config.js';
import type { SeckillConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/open-database.js';
import { startOps } from '../src/ops/ops-role.js';
import { freshDatabaseUrl } from './support/servers.js';

interface Received {
  readonly alert: string;
  readonly summary: string;
  readonly details: Record<string, unknown>;
}

async function startReceiver() {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push(JSON.parse(body) as Received);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Waits until `found()` returns something, or fails after `ms`. */
async function eventually<T>(what: string, found: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await found();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const silent = pino({ level: 'silent' });
/** Every job off; each test turns on the one it needs (croner's 6-field form: every second). */
const JOBS_OFF = { backupSchedule: '', verifySchedule: '', pruneSchedule: '', drillSchedule: '' } as const;
const EVERY_SECOND = '* * * * * *';

describe('alerts: the ops role', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let dir: string;
  const opsConfig = (settings: Partial<Record<keyof SeckillConfig, unknown>>): SeckillConfig =>
    loadConfig({
      overrides: {
        dataDir: dir,
        backupTargets: [{ name: 'local', url: join(dir, `backups-${randomBytes(3).toString('hex')}`) }],
        backupKey: randomBytes(32).toString('hex'),
        alertWebhookUrl: receiver.url,
        // A small file set: the default one archives the whole program folder.
        backupFileSets: [{ name: 'config', root: dir, include: ['*.json'], exclude: [] }],
        ...JOBS_OFF,
        ...settings,
      },
    });
  const named = (alert: string) => receiver.received.filter((r) => r.alert === alert);

  before(async () => {
    receiver = await startReceiver();
    dir = mkdtempSync(join(tmpdir(), 'seckill-ops-'));
    writeFileSync(join(dir, 'seckill.json'), '{}\n');
  });
  after(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('raises backup_stale and drill_overdue at start when a target holds no backup', async () => {
    receiver.received.length = 0;
    const ops = startOps(opsConfig({ databaseUrl: await freshDatabaseUrl('sqlite') }), silent, new Registry());
    try {
      await eventually('the policy alerts', () => (receiver.received.length >= 2 ? true : undefined));
      assert.deepEqual(receiver.received.map((r) => `${r.alert}:${String(r.details.target)}`).sort(), ['backup_stale:local', 'drill_overdue:local']);
    } finally {
      await ops.stop();
    }
  });

  it('raises job_failed when a scheduled backup fails', async () => {
    receiver.received.length = 0;
    // The database file is not there (a wrong path after a move): every backup fails.
    const config = opsConfig({ databaseUrl: `sqlite:${join(dir, 'moved-away.db')}`, backupSchedule: EVERY_SECOND });
    const ops = startOps(config, silent, new Registry());
    try {
      const [failed] = await eventually('job_failed', () => (named('job_failed').length > 0 ? named('job_failed') : undefined));
      assert.equal(failed.details.job, 'backup');
      assert.match(failed.summary, /the scheduled backup job failed: .*moved-away\.db: there is no SQLite database at that path/);
    } finally {
      await ops.stop();
    }
  });

  it('raises tool_version_mismatch, not job_failed, when the dump tool is too old for the server', async () => {
    receiver.received.length = 0;
    const url = await freshDatabaseUrl('mysql');
    const db = await openDatabase(url);
    await db.migrate();
    await db.close();
    // A MariaDB 10.3 client in front of PATH: it would dump a 10.11 server without an error and miss what it does not know.
    const bin = mkdtempSync(join(tmpdir(), 'seckill-old-tools-'));
    const fake = join(bin, 'mariadb-dump');
    writeFileSync(fake, '#!/bin/sh\necho "mariadb-dump  Ver 10.17 Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)"\n');
    chmodSync(fake, 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${path ?? ''}`;
    const ops = startOps(opsConfig({ databaseUrl: url, backupSchedule: EVERY_SECOND }), silent, new Registry());
    try {
      const [mismatch] = await eventually('tool_version_mismatch', () => (named('tool_version_mismatch').length > 0 ? named('tool_version_mismatch') : undefined));
      assert.match(mismatch.summary, /refusing to back up: mariadb-dump 10\.3\.39.* cannot faithfully dump/);
      assert.deepEqual(named('job_failed'), [], 'the refusal is raised once, by its own name');
    } finally {
      await ops.stop();
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('raises drill_failed, not job_failed, when a scheduled drill fails', async () => {
    receiver.received.length = 0;
    const ops = startOps(opsConfig({ databaseUrl: await freshDatabaseUrl('sqlite'), drillSchedule: EVERY_SECOND }), silent, new Registry());
    try {
      const [failed] = await eventually('drill_failed', () => (named('drill_failed').length > 0 ? named('drill_failed') : undefined));
      assert.match(failed.summary, /drill of backup \(none\) on target local FAILED: pick-backup/);
    } finally {
      await ops.stop();
    }
    assert.deepEqual(named('job_failed'), []);
  });

  it('records a scheduled backup in the metrics and judges the policy on it at once', async () => {
    receiver.received.length = 0;
    const url = await freshDatabaseUrl('sqlite');
    const db = await openDatabase(url);
    await db.migrate();
    await db.close();
    const registry = new Registry();
    const ops = startOps(opsConfig({ databaseUrl: url, backupSchedule: EVERY_SECOND }), silent, registry);
    try {
      await eventually('a successful backup', async () => ((await registry.getSingleMetricAsString('seckill_job_last_success_timestamp_seconds')).includes('job="backup"') ? true : undefined));
      const text = await registry.metrics();
      assert.match(text, /seckill_job_runs_total\{job="backup",outcome="success"\} [1-9]/);
      assert.match(text, /seckill_backup_age_seconds\{target="local"\} \d/);
      assert.deepEqual(named('job_failed'), []);
      assert.deepEqual(named('backup_stale').length <= 1, true, 'stale at most once: before the first backup, then quiet');
    } finally {
      await ops.stop();
    }
  });
});
