import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppClient, inParallel } from './support/app-client.js';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

/**
 * The backend combinations the product supports, as (database, stock store). With Redis
 * the order writer runs on the API's event loop by default; one combination runs it in its
 * own thread (`writerThread: true`) so both placements stay covered.
 */
const BACKENDS = [
  { name: 'embedded (SQLite + in-process stock)', database: 'sqlite', redis: false, writerThread: false },
  { name: 'Redis + SQLite', database: 'sqlite', redis: true, writerThread: false },
  { name: 'Redis + MariaDB, writer in its own thread', database: 'mysql', redis: true, writerThread: true },
  { name: 'Redis + PostgreSQL', database: 'postgres', redis: true, writerThread: false },
] as const;

for (const backend of BACKENDS) {
  describe(`${backend.name}: purchase`, () => {
    let redis: RedisServer | undefined;
    let app: TestNode;

    before(async () => {
      if (backend.redis) redis = await startRedis();
      app = await startTestNode({
        databaseUrl: await freshDatabaseUrl(backend.database),
        redisUrl: redis?.url ?? '',
        rateLimitPerUser: 0,
        writerThread: backend.writerThread,
      });
    });
    after(async () => {
      await app?.stop();
      await redis?.stop();
    });

    it('sells exactly the stock to 2,000 concurrent distinct buyers and records every accepted order', async () => {
      const { client, node } = app;
      const saleId = await client.createSale(100);
      const users = Array.from({ length: 2000 }, (_, i) => `buyer-${i}`);
      const answers = await inParallel(users, 200, (user) => client.purchase(saleId, user));

      const accepted = answers.filter((a) => a.status === 202);
      const byStatus = new Map<string, number>();
      for (const a of answers) byStatus.set(`${a.status} ${a.body.code ?? ''}`, (byStatus.get(`${a.status} ${a.body.code ?? ''}`) ?? 0) + 1);
      assert.equal(accepted.length, 100, `answers by status: ${JSON.stringify([...byStatus])}`);
      assert.equal(answers.filter((a) => a.status === 409 && a.body.code === 'SOLD_OUT').length, 1900);

      await client.drained(saleId);
      // With Redis and writerThread the orders above were written by the writer thread.
      assert.equal(node.writer === undefined, backend.redis && backend.writerThread, 'the order writer runs where configured');
      const counts = await node.db.countOrders(saleId);
      assert.equal(counts.created, 100, 'exactly the stock is in the database');
      const sale = await node.db.getSale(saleId);
      assert.equal(sale!.sold, 100);

      const orderIds = new Set(accepted.map((a) => a.body.orderId!));
      assert.equal(orderIds.size, 100, 'every accepted buyer got a distinct order');
      const owners = new Set<string>();
      for (const orderId of orderIds) {
        const order = await node.db.getOrder(orderId);
        assert.ok(order, `order ${orderId} answered 202 is in the database`);
        assert.equal(order.status, 'created');
        assert.ok(!owners.has(order.userId), `user ${order.userId} holds one order`);
        owners.add(order.userId);
      }

      const stats = await client.stats(saleId);
      assert.deepEqual(
        { remaining: stats.body.remaining, pending: stats.body.pending, created: stats.body.created, paid: stats.body.paid, expired: stats.body.expired, cancelled: stats.body.cancelled },
        { remaining: 0, pending: 0, created: 100, paid: 0, expired: 0, cancelled: 0 },
      );
      const page = await client.request('GET', `/api/sales/${saleId}`);
      assert.equal(page.body.state, 'sold_out');
      assert.equal(page.body.remaining, 0);
    });

    it('gives a user who retries 20 times at once one order', async () => {
      const { client, node } = app;
      const saleId = await client.createSale(10);
      const answers = await Promise.all(Array.from({ length: 20 }, () => client.purchase(saleId, 'eager-user')));
      const ids = new Set(answers.map((a) => a.body.orderId));
      assert.equal(ids.size, 1, `one order id, got ${JSON.stringify(answers.map((a) => [a.status, a.body]))}`);
      assert.equal(answers.filter((a) => a.status === 202).length, 1, 'one answer creates the order');
      assert.equal(answers.filter((a) => a.status === 200).length, 19, 'the retries return it');
      await client.drained(saleId);
      assert.equal((await node.db.countOrders(saleId)).created, 1);
      assert.equal((await client.stats(saleId)).body.remaining, 9);
    });

    it('lets the owner see, pay and not cancel a paid order, and hides it from others', async () => {
      const { client } = app;
      const saleId = await client.createSale(5);
      const bought = await client.purchase(saleId, 'owner');
      assert.equal(bought.status, 202);
      const orderId = bought.body.orderId!;
      await client.drained(saleId);

      const seen = await client.request('GET', `/api/orders/${orderId}`, { token: client.tokenFor('owner') });
      assert.equal(seen.status, 200);
      assert.equal(seen.body.status, 'created');
      assert.equal(seen.body.saleId, saleId);
      const stranger = await client.request('GET', `/api/orders/${orderId}`, { token: client.tokenFor('someone-else') });
      assert.equal(stranger.status, 404);
      assert.equal(stranger.body.code, 'ORDER_NOT_FOUND');

      const paid = await client.request('POST', `/api/orders/${orderId}/pay`, { token: client.tokenFor('owner') });
      assert.deepEqual([paid.status, paid.body], [200, { status: 'paid' }]);
      const again = await client.request('POST', `/api/orders/${orderId}/pay`, { token: client.tokenFor('owner') });
      assert.deepEqual([again.status, again.body], [200, { status: 'paid' }], 'paying twice is harmless');
      const cancel = await client.request('POST', `/api/orders/${orderId}/cancel`, { token: client.tokenFor('owner') });
      assert.deepEqual([cancel.status, cancel.body.code], [409, 'ORDER_PAID']);
      const retry = await client.purchase(saleId, 'owner');
      assert.deepEqual([retry.status, retry.body], [200, { orderId, status: 'paid' }], 'a retry returns the same, now paid, order');
    });

    it('gives a buyer who retries after the sell-out the order back, and everyone else SOLD_OUT', async () => {
      const { client } = app;
      const saleId = await client.createSale(3);
      const bought = await client.purchase(saleId, 'early-bird');
      assert.equal(bought.status, 202);
      await Promise.all(['b2', 'b3'].map((user) => client.purchase(saleId, user)));
      assert.equal((await client.purchase(saleId, 'latecomer')).body.code, 'SOLD_OUT');
      // The node learns the buyers of a sold-out sale in the background; until then a holder
      // is answered SOLD_OUT like everyone else.
      const deadline = Date.now() + 10_000;
      let retry = await client.purchase(saleId, 'early-bird');
      while (retry.status === 409 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        retry = await client.purchase(saleId, 'early-bird');
      }
      assert.equal(retry.status, 200, `the holder's retry: ${JSON.stringify(retry.body)}`);
      assert.equal(retry.body.orderId, bought.body.orderId, 'the same order, not a second one');
      for (let i = 0; i < 20; i++) {
        const other = await client.purchase(saleId, `late-${i}`);
        assert.deepEqual([other.status, other.body.code], [409, 'SOLD_OUT']);
      }
      // A token for the holder signed with another key learns nothing: SOLD_OUT, as for anyone.
      const forged = new AppClient(client.baseUrl, 'not-the-admin-token', 'not-the-jwt-secret-of-this-node-at-all');
      const probe = await forged.purchase(saleId, 'early-bird');
      assert.deepEqual([probe.status, probe.body.code], [409, 'SOLD_OUT']);
      const stats = await client.stats(saleId);
      assert.equal(stats.body.remaining, 0);
    });

    it('returns the unit of a cancelled order to sale exactly once', async () => {
      const { client } = app;
      const saleId = await client.createSale(1);
      const first = await client.purchase(saleId, 'canceller');
      await client.drained(saleId);
      assert.equal((await client.purchase(saleId, 'waiting-buyer')).body.code, 'SOLD_OUT');
      const token = client.tokenFor('canceller');
      const cancels = await Promise.all(Array.from({ length: 5 }, () => client.request('POST', `/api/orders/${first.body.orderId}/cancel`, { token })));
      for (const c of cancels) assert.deepEqual([c.status, c.body], [200, { status: 'cancelled' }]);
      const stats = await client.stats(saleId);
      assert.equal(stats.body.remaining, 1, 'one unit back, not five');
      const next = await client.purchase(saleId, 'waiting-buyer');
      assert.equal(next.status, 202, `the unit sells again: ${JSON.stringify(next.body)}`);
      assert.equal((await client.purchase(saleId, 'third-buyer')).body.code, 'SOLD_OUT');
    });
  });
}
