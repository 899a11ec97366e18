import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inParallel } from './support/app-client.js';
import { startTestNode, TEST_SECRETS } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { runCli } from './support/app-process.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

describe('Redis flushed in the middle of a sale', () => {
  let redis: RedisServer;
  let app: TestNode;
  before(async () => {
    redis = await startRedis();
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('postgres'), redisUrl: redis.url, rateLimitPerUser: 0, reconcileIntervalMs: 0 });
  });
  after(async () => {
    await app?.stop();
    await redis?.stop();
  });

  it('refuses the sale with 503 until `seckill reconcile --repair` rebuilds it, then finishes with no oversell', async () => {
    const { client, node } = app;
    const stock = 300;
    const saleId = await client.createSale(stock);
    const firstWave = Array.from({ length: 200 }, (_, i) => `early-${i}`);
    const accepted = new Map<string, string>();
    await inParallel(firstWave, 32, async (user) => {
      const a = await client.purchase(saleId, user);
      if (a.status === 202) accepted.set(user, a.body.orderId!);
    });
    await client.drained(saleId);
    assert.equal(accepted.size, 200);

    await redis.flushAll();
    const refused = await client.purchase(saleId, 'during-outage');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'UNAVAILABLE');
    assert.equal(refused.headers.get('retry-after'), '1');
    const page = await client.request('GET', `/api/sales/${saleId}`);
    assert.equal(page.status, 503);

    const env = { SECKILL_ADMIN_TOKEN: TEST_SECRETS.adminToken, SECKILL_JWT_SECRET: TEST_SECRETS.jwtSecret, SECKILL_DATA_DIR: app.config.dataDir };
    const check = await runCli(['reconcile', '--url', client.baseUrl], env);
    assert.equal(check.code, 1, `reconcile without --repair reports the missing sale and fails:\n${check.stdout}${check.stderr}`);
    assert.match(check.stdout, new RegExp(`^${saleId}\\s+missing`, 'm'));
    const repair = await runCli(['reconcile', '--repair', '--url', client.baseUrl], env);
    assert.equal(repair.code, 0, repair.stdout + repair.stderr);
    assert.match(repair.stdout, new RegExp(`^${saleId}\\s+ok\\s+300\\s+200\\s+0\\s+100\\s+100\\s+rebuilt`, 'm'));

    const again = await client.purchase(saleId, firstWave[0]);
    assert.deepEqual([again.status, again.body.orderId], [200, accepted.get(firstWave[0])], 'a buyer from before the loss still gets their order back');

    const secondWave = Array.from({ length: 400 }, (_, i) => `late-${i}`);
    await inParallel(secondWave, 32, async (user) => {
      const a = await client.purchase(saleId, user);
      if (a.status === 202) accepted.set(user, a.body.orderId!);
    });
    await client.drained(saleId);
    const counts = await node.db.countOrders(saleId);
    assert.equal(counts.created, stock, 'sold out exactly');
    assert.equal(accepted.size, stock, 'and exactly the stock was accepted');
    assert.equal((await client.stats(saleId)).body.remaining, 0);
  });
});
