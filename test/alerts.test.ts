import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { BackupManifest } from '../src/backup/backup-manifest.js';
import { AlertSink } from '../src/ops/alert-sink.js';
import { checkBackupPolicy } from '../src/ops/backup-policy.js';
import type { DrillOutcome, TargetState } from '../src/ops/backup-policy.js';
import { OpsMetrics } from '../src/ops/ops-metrics.js';
import { PolicyMonitor } from '../src/ops/policy-monitor.js';

/** What the test's webhook receiver got. */
interface Received {
  readonly alert: string;
  readonly severity: string;
  readonly summary: string;
  readonly details: Record<string, unknown>;
  readonly at: string;
}

/** A webhook receiver on 127.0.0.1 that records JSON posts and answers as told. */
async function startReceiver(answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(204).end()) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push(JSON.parse(body) as Received);
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const silent = pino({ level: 'silent' });
const HOUR = 3_600_000;
const NOW = Date.parse('2026-06-10T12:00:00.000Z');
const SETTINGS = { backupMaxAgeMinutes: 120, drillMaxAgeHours: 48, backupShrinkAlertRatio: 0.5 };

/** A complete database backup taken `hoursAgo` before NOW, whose dump is `bytes` long. */
function backup(hoursAgo: number, bytes: number, method: 'mariadb-dump' | 'mariabackup' = 'mariadb-dump', from = NOW): BackupManifest {
  const createdAt = new Date(from - hoursAgo * HOUR).toISOString();
  return {
    formatVersion: 1,
    id: `${createdAt.replace(/:/g, '-')}-0001`,
    createdAt,
    completedAt: createdAt,
    durationMs: 1000,
    contents: { database: true, files: false },
    database: {
      engine: 'mysql',
      method,
      name: 'seckill',
      tool: { name: 'mariadb-dump', version: '10.11.6' },
      server: { version: '10.11.6-MariaDB' },
      rowCounts: { sales: 3, orders: Math.round(bytes / 100) },
      sales: [],
    },
    artifacts: [
      {
        name: 'database.sql.zst.enc',
        role: 'database',
        size: Math.round(bytes / 5),
        sha256: '0'.repeat(64),
        rawSize: bytes,
        rawSha256: '0'.repeat(64),
        compression: 'zstd',
        encryption: { algorithm: 'aes-256-gcm', keyId: 'k1' },
      },
    ],
    origin: { host: 'db1', seckillVersion: '0.1.0' },
  };
}

function drill(hoursAgo: number, ok: boolean, from = NOW): DrillOutcome {
  return { backupId: 'x', finishedAt: new Date(from - hoursAgo * HOUR).toISOString(), ok };
}

function alertsOf(state: TargetState): string[] {
  return checkBackupPolicy(state, SETTINGS, NOW).breaches.map((b) => b.alert);
}

describe('alerts: the webhook sink', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  it('posts { alert, severity, summary, details, at } as JSON and counts the alert', async () => {
    const metrics = OpsMetrics.in(new Registry());
    const sink = new AlertSink({ webhookUrl: receiver.url, log: silent, metrics, clock: { now: () => NOW, sleep: async () => undefined } });
    const delivery = await sink.raise({ alert: 'job_failed', severity: 'critical', summary: 'the backup job failed', details: { job: 'backup' } });
    assert.deepEqual(delivery, { delivered: true, status: 204 });
    assert.deepEqual(receiver.received.at(-1), {
      alert: 'job_failed',
      severity: 'critical',
      summary: 'the backup job failed',
      details: { job: 'backup' },
      at: '2026-06-10T12:00:00.000Z',
    });
    const counted = (await metrics.alerts.get()).values.find((v) => v.labels.alert === 'job_failed');
    assert.equal(counted?.value, 1);
  });

  it('never throws when the receiver is down, answers an error, or hangs; it says why instead', async () => {
    const metrics = OpsMetrics.in(new Registry());
    const alert = { alert: 'backup_stale', severity: 'critical', summary: 's', details: {} } as const;

    const closed = await startReceiver();
    await closed.close();
    const down = await new AlertSink({ webhookUrl: closed.url, log: silent, metrics }).raise(alert);
    assert.equal(down.delivered, false);
    assert.match(down.error ?? '', /could not reach the webhook/);

    const failing = await startReceiver((_req, res) => res.writeHead(500).end('boom'));
    try {
      const answered = await new AlertSink({ webhookUrl: failing.url, log: silent, metrics }).raise(alert);
      assert.deepEqual([answered.delivered, answered.status], [false, 500]);
    } finally {
      await failing.close();
    }

    const hanging = await startReceiver(() => undefined);
    try {
      const started = Date.now();
      const timedOut = await new AlertSink({ webhookUrl: hanging.url, log: silent, metrics, timeoutMs: 200 }).raise(alert);
      assert.equal(timedOut.delivered, false);
      assert.match(timedOut.error ?? '', /no answer within 200 ms/);
      assert.ok(Date.now() - started < 2000, 'the timeout bounds how long a job waits for the receiver');
    } finally {
      await hanging.close();
    }
    const counted = (await metrics.alerts.get()).values.find((v) => v.labels.alert === 'backup_stale');
    assert.equal(counted?.value, 3, 'every alert is counted, delivered or not');
  });

  it('only logs and counts when no webhook is configured', async () => {
    const delivery = await new AlertSink({ webhookUrl: '', log: silent }).raise({ alert: 'drill_failed', severity: 'critical', summary: 's', details: {} });
    assert.deepEqual(delivery, { delivered: false, error: 'no alertWebhookUrl configured' });
  });
});

describe('alerts: the backup policy', () => {
  it('is quiet when backups are fresh, steady in size and drilled', () => {
    assert.deepEqual(alertsOf({ target: 'local', backups: [backup(3, 1000), backup(1, 1010)], drills: [drill(20, true)] }), []);
  });

  it('raises backup_stale when the newest database backup is older than backupMaxAgeMinutes, or there is none', () => {
    assert.deepEqual(alertsOf({ target: 'local', backups: [backup(5, 1000), backup(2.5, 1000)], drills: [drill(1, true)] }), ['backup_stale']);
    const none = checkBackupPolicy({ target: 'offsite', backups: [], drills: [drill(1, true)] }, SETTINGS, NOW).breaches;
    assert.deepEqual(none.map((b) => [b.alert, b.key]), [['backup_stale', 'backup_stale:offsite']]);
    assert.match(none[0].summary, /target offsite holds no complete database backup/);
  });

  it('raises backup_shrunk when the newest dump is under backupShrinkAlertRatio of the previous one', () => {
    const [breach] = checkBackupPolicy({ target: 'local', backups: [backup(2, 1_000_000), backup(1, 400_000)], drills: [drill(1, true)] }, SETTINGS, NOW).breaches;
    assert.equal(breach?.alert, 'backup_shrunk');
    assert.equal(breach.details.ratio, 0.4);
    assert.match(breach.summary, /40\.0% of the previous backup/);
    assert.deepEqual(alertsOf({ target: 'local', backups: [backup(2, 1_000_000), backup(1, 600_000)], drills: [drill(1, true)] }), [], 'above the ratio is fine');
    assert.deepEqual(
      alertsOf({ target: 'local', backups: [backup(2, 1_000_000), backup(1, 100_000, 'mariabackup')], drills: [drill(1, true)] }),
      [],
      'a dump made another way is not compared',
    );
  });

  it('raises drill_overdue when no drill passed within drillMaxAgeHours, even if later ones ran and failed', () => {
    assert.deepEqual(alertsOf({ target: 'local', backups: [backup(1, 1000)], drills: [] }), ['drill_overdue']);
    assert.deepEqual(alertsOf({ target: 'local', backups: [backup(1, 1000)], drills: [drill(50, true), drill(2, false)] }), ['drill_overdue']);
    const measures = checkBackupPolicy({ target: 'local', backups: [backup(1, 1000)], drills: [drill(50, true), drill(2, false)] }, SETTINGS, NOW).measures;
    assert.deepEqual(measures, { target: 'local', backupAgeSeconds: 3600, lastDrillOk: false, lastDrillPassedAt: NOW - 50 * HOUR });
  });
});

describe('alerts: the policy monitor', () => {
  it('raises a breach once, again after repeatMs while it persists, and forgets it once resolved', async () => {
    const receiver = await startReceiver();
    try {
      let now = NOW;
      const clock = { now: () => now, sleep: async () => undefined };
      let states: Record<string, TargetState> = {
        local: { target: 'local', backups: [backup(5, 1000)], drills: [drill(1, true)] },
      };
      const metrics = OpsMetrics.in(new Registry());
      const monitor = new PolicyMonitor({
        settings: SETTINGS,
        targets: ['local', 'offsite'],
        readState: async (target) => {
          const state = states[target];
          if (!state) throw new Error('connect ECONNREFUSED 127.0.0.1:9000');
          return state;
        },
        alerts: new AlertSink({ webhookUrl: receiver.url, log: silent, metrics, clock }),
        log: silent,
        metrics,
        clock,
        repeatMs: 4 * HOUR,
      });
      const sent = () => receiver.received.map((r) => `${r.alert}:${String(r.details.target)}`);

      await monitor.check();
      assert.deepEqual(sent(), ['backup_stale:local', 'backup_stale:offsite'], 'an unreadable target is one nobody can restore from');
      assert.match(receiver.received[1].summary, /cannot read the backup catalog of target offsite/);
      assert.equal((await metrics.backupAgeSeconds.get()).values.find((v) => v.labels.target === 'local')?.value, 5 * 3600);

      now += HOUR;
      await monitor.check();
      assert.equal(receiver.received.length, 2, 'a breach that persists stays quiet within repeatMs');

      now += 3 * HOUR;
      await monitor.check();
      assert.equal(receiver.received.length, 4, 'and is raised again after it');

      const fresh = (target: string): TargetState => ({ target, backups: [backup(0.5, 1000, 'mariadb-dump', now)], drills: [drill(1, true, now)] });
      states = { local: fresh('local'), offsite: fresh('offsite') };
      assert.deepEqual(await monitor.check(), [], 'resolved');
      states = { local: { ...states.local, backups: [] }, offsite: states.offsite };
      await monitor.check();
      assert.deepEqual(sent().slice(4), ['backup_stale:local'], 'a breach that returns after resolving is raised at once');
    } finally {
      await receiver.close();
    }
  });
});
