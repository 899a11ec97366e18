/**
 * Readiness while the database hangs: purchases only need Redis, so a node must stay in
 * the balancer (200, `degraded`) and answer within the balancer's check timeout, and the
 * orders bought meanwhile must reach the database once it is back.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { TestNode } from './support/app-node.js';
import { startTestNode } from './support/app-node.js';
import type { DatabaseServer } from './support/database-server.js';
import { startMariaDb } from './support/mariadb-server.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';

/** Waits until /proc shows `pid` stopped (state T), at most 5 s. */
async function untilStopped(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!/^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) {
    if (Date.now() > deadline) throw new Error(`process ${pid} was sent SIGSTOP but is not stopped after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** HAProxy's `timeout check` in deploy/haproxy/haproxy.cfg.template. */
const BALANCER_CHECK_TIMEOUT_MS = 400;

describe('health while the database hangs', () => {
  let mariadb: DatabaseServer;
  let redis: RedisServer;
  let app: TestNode;
  before(async () => {
    [mariadb, redis] = await Promise.all([startMariaDb(), startRedis({ appendonly: true })]);
    app = await startTestNode({ databaseUrl: await mariadb.createDatabase(), redisUrl: redis.url, rateLimitPerUser: 0 });
  });
  after(async () => {
    mariadb?.kill('SIGCONT');
    await app?.stop();
    await redis?.stop();
    await mariadb?.stop();
  });

  it('stays ready (degraded) and sells while the database is stopped, then persists what it sold', async () => {
    const saleId = await app.client.createSale(10);
    assert.equal((await app.client.purchase(saleId, 'before')).status, 202);
    await app.client.drained(saleId);
    mariadb.kill('SIGSTOP');
    // The signal is sent at once but takes effect asynchronously: a check sent right after
    // could still be answered (it was once, in CI). Wait until the kernel shows it stopped.
    await untilStopped(mariadb.pid!);
    try {
      const started = Date.now();
      const ready = await app.client.request<{ status: string; checks: Record<string, string> }>('GET', '/health/ready');
      const waited = Date.now() - started;
      assert.deepEqual([ready.status, ready.body.status, ready.body.checks.database, ready.body.checks.stockStore], [200, 'degraded', 'down', 'ok']);
      assert.ok(waited < BALANCER_CHECK_TIMEOUT_MS, `readiness answered after ${waited} ms; the balancer gives up after ${BALANCER_CHECK_TIMEOUT_MS} ms`);
      const during = await app.client.purchase(saleId, 'during');
      assert.equal(during.status, 202, JSON.stringify(during.body));
    } finally {
      mariadb.kill('SIGCONT');
    }
    await app.client.drained(saleId, 30_000);
    const stats = await app.client.stats(saleId);
    assert.deepEqual([stats.body.created, stats.body.remaining], [2, 8]);
    const ready = await app.client.request<{ status: string }>('GET', '/health/ready');
    assert.deepEqual([ready.status, ready.body.status], [200, 'ready']);
  });
});
