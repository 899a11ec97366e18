import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppClient, inParallel } from './support/app-client.js';
import { TEST_SECRETS } from './support/app-node.js';
import { startAppProcess } from './support/app-process.js';
import type { AppProcess } from './support/app-process.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';
import { openDatabase } from '../src/db/open-database.js';

describe('kill -9 of the server in the middle of a Redis-backed sale', () => {
  let redis: RedisServer;
  let app: AppProcess | undefined;
  before(async () => {
    redis = await startRedis({ appendonly: true });
  });
  after(async () => {
    await app?.kill('SIGKILL');
    await redis?.stop();
  });

  it('persists every order it answered 2xx, none twice, and remaining = stock − live orders after restart', async () => {
    const databaseUrl = await freshDatabaseUrl('mysql');
    const env = {
      SECKILL_DATABASE_URL: databaseUrl,
      SECKILL_REDIS_URL: redis.url,
      SECKILL_ADMIN_TOKEN: TEST_SECRETS.adminToken,
      SECKILL_JWT_SECRET: TEST_SECRETS.jwtSecret,
      SECKILL_RATE_LIMIT_PER_USER: '0',
      SECKILL_WRITER_CLAIM_IDLE_MS: '500',
      SECKILL_DATA_DIR: '/tmp',
    };
    app = await startAppProcess(env);
    const client = new AppClient(app.url, TEST_SECRETS.adminToken, TEST_SECRETS.jwtSecret);
    const stock = 400;
    const saleId = await client.createSale(stock);
    const users = Array.from({ length: 3000 }, (_, i) => `crash-buyer-${i}`);

    const accepted = new Map<string, string>();
    const current = app;
    let sent = 0;
    const killer = (async () => {
      while (sent < 250) await new Promise((resolve) => setTimeout(resolve, 2));
      await current.kill('SIGKILL');
    })();
    await inParallel(users, 64, async (user) => {
      sent++;
      try {
        const answer = await client.purchase(saleId, user);
        if (answer.status === 202 || answer.status === 200) accepted.set(user, answer.body.orderId!);
      } catch {
        // the server died under this request: no answer, so no promise was made
      }
    });
    await killer;
    assert.ok(accepted.size > 0, 'some purchases were accepted before the kill');

    app = await startAppProcess(env, { port: app.port });
    // Finish the sale on the restarted server.
    const rest = users.filter((u) => !accepted.has(u));
    await inParallel(rest, 64, async (user) => {
      const answer = await client.purchase(saleId, user);
      if (answer.status === 202 || answer.status === 200) accepted.set(user, answer.body.orderId!);
    });
    await client.drained(saleId, 30_000);

    const db = await openDatabase(databaseUrl);
    try {
      const counts = await db.countOrders(saleId);
      const live = counts.created + counts.paid;
      assert.ok(live <= stock, `not oversold: ${live} live orders for ${stock} units`);
      const seen = new Set<string>();
      for (const [user, orderId] of accepted) {
        const order = await db.getOrder(orderId);
        assert.ok(order, `order ${orderId} answered 2xx to ${user} is in the database`);
        assert.equal(order.userId, user);
        assert.ok(!seen.has(order.id));
        seen.add(order.id);
      }
      assert.equal(live, accepted.size, 'every live order was answered 2xx to its buyer, and each buyer has one');
      const stats = await client.stats(saleId);
      assert.equal(stats.body.remaining, stock - live, 'no stranded stock');
      assert.equal((await db.getSale(saleId))!.sold, live);
    } finally {
      await db.close();
    }
  });
});
