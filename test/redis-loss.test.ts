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

describe('Redis restarted empty while the writer role repairs lost sales by itself', () => {
  let redis: RedisServer;
  let app: TestNode;
  before(async () => {
    redis = await startRedis();
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), redisUrl: redis.url, rateLimitPerUser: 0, reconcileIntervalMs: 200 });
  });
  after(async () => {
    await app?.stop();
    await redis?.stop();
  });

  it('rebuilds the lost sale within a few reconcile intervals and sells on without oversell', async () => {
    const { client, node } = app;
    const saleId = await client.createSale(50);
    for (let i = 0; i < 20; i++) assert.equal((await client.purchase(saleId, `first-${i}`)).status, 202);
    await client.drained(saleId);
    await redis.flushAll();

    let answer = await client.purchase(saleId, 'after-loss');
    const started = Date.now();
    while (answer.status === 503 && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await client.purchase(saleId, 'after-loss');
    }
    assert.equal(answer.status, 202, `sells again after the automatic rebuild: ${JSON.stringify(answer.body)}`);
    assert.deepEqual((await client.purchase(saleId, 'first-0')).status, 200, 'an earlier buyer still holds their order');
    await inParallel(Array.from({ length: 100 }, (_, i) => `late-${i}`), 16, (user) => client.purchase(saleId, user));
    await client.drained(saleId);
    assert.equal((await node.db.countOrders(saleId)).created, 50);
    assert.equal((await client.stats(saleId)).body.remaining, 0);
  });
});
