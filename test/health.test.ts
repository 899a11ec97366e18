import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

describe('health, metrics and a Redis outage', () => {
  let redis: RedisServer;
  let app: TestNode;
  before(async () => {
    redis = await startRedis({ appendonly: true });
    // The writer runs in its own thread, so the metrics below also show the thread's figures summed in.
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), redisUrl: redis.url, rateLimitPerUser: 0, redisCommandTimeoutMs: 300, writerThread: true });
  });
  after(async () => {
    await app?.stop();
    await redis?.stop();
  });

  it('is live and ready when its dependencies answer', async () => {
    assert.equal((await app.client.request('GET', '/health/live')).status, 200);
    const ready = await app.client.request('GET', '/health/ready');
    assert.deepEqual([ready.status, ready.body.status], [200, 'ready']);
  });

  it('exports purchases by outcome, latency, remaining stock, pending orders and writer lag', async () => {
    const saleId = await app.client.createSale(2);
    await app.client.purchase(saleId, 'm1');
    await app.client.purchase(saleId, 'm2');
    await app.client.purchase(saleId, 'm3');
    await app.client.drained(saleId);
    const text = (await app.client.request('GET', '/metrics')).body as unknown as string;
    assert.match(text, /^seckill_purchases_total\{outcome="reserved"\} 2$/m);
    assert.match(text, /^seckill_purchases_total\{outcome="sold_out"\} 1$/m);
    assert.match(text, /^seckill_purchase_duration_seconds_count 3$/m);
    assert.match(text, new RegExp(`^seckill_sale_remaining\\{sale="${saleId}"\\} 0$`, 'm'));
    assert.match(text, /^seckill_orders_pending 0$/m);
    assert.match(text, /^seckill_writer_lag_seconds [0-9.e-]+$/m);
    assert.match(text, /^seckill_orders_persisted_total 2$/m);
  });

  it('fails fast with 503 and Retry-After while Redis is down, and sells again when it is back', async () => {
    const saleId = await app.client.createSale(10);
    assert.equal((await app.client.purchase(saleId, 'before-outage')).status, 202);
    await app.client.drained(saleId);
    redis.kill('SIGSTOP');
    try {
      const started = Date.now();
      const answer = await app.client.purchase(saleId, 'during-outage');
      const waited = Date.now() - started;
      assert.deepEqual([answer.status, answer.body.code, answer.headers.get('retry-after')], [503, 'UNAVAILABLE', '1']);
      assert.ok(waited < 5000, `answered after ${waited} ms instead of hanging`);
      const ready = await app.client.request<{ status: string; checks: Record<string, string> }>('GET', '/health/ready');
      assert.deepEqual([ready.status, ready.body.checks.stockStore], [503, 'down']);
    } finally {
      redis.kill('SIGCONT');
    }
    let after;
    for (let i = 0; i < 50; i++) {
      after = await app.client.purchase(saleId, 'after-outage');
      if (after.status === 202) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(after!.status, 202, JSON.stringify(after!.body));
    // A 503 does not say the attempt failed: the command may have reached Redis before the
    // timeout. The buyer's retry tells, and never makes a second order.
    const retry = await app.client.purchase(saleId, 'during-outage');
    assert.ok(retry.status === 200 || retry.status === 202, JSON.stringify(retry.body));
    await app.client.drained(saleId);
    const stats = await app.client.stats(saleId);
    assert.deepEqual([stats.body.created, stats.body.remaining], [3, 7]);
  });
});
