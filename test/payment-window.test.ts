import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

const BACKENDS = [
  { name: 'embedded', redis: false },
  { name: 'Redis + SQLite', redis: true },
] as const;

for (const backend of BACKENDS) {
  describe(`${backend.name}: payment window`, () => {
    let redis: RedisServer | undefined;
    let app: TestNode;

    before(async () => {
      if (backend.redis) redis = await startRedis();
      app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), redisUrl: redis?.url ?? '', expiryIntervalMs: 100 });
    });
    after(async () => {
      await app?.stop();
      await redis?.stop();
    });

    it('expires an unpaid order after its window, refuses payment, and sells the unit again', async () => {
      const { client, node } = app;
      const saleId = await client.createSale(1, { paymentWindowSeconds: 1 });
      const first = await client.purchase(saleId, 'slow-payer');
      assert.equal(first.status, 202);
      await client.drained(saleId);
      assert.equal((await client.purchase(saleId, 'second-buyer')).body.code, 'SOLD_OUT');

      await new Promise((resolve) => setTimeout(resolve, 1600));
      const order = await client.request('GET', `/api/orders/${first.body.orderId}`, { token: client.tokenFor('slow-payer') });
      assert.equal(order.body.status, 'expired');
      const pay = await client.request('POST', `/api/orders/${first.body.orderId}/pay`, { token: client.tokenFor('slow-payer') });
      assert.deepEqual([pay.status, pay.body.code], [409, 'ORDER_EXPIRED']);

      let second = await client.purchase(saleId, 'second-buyer');
      for (let i = 0; i < 30 && second.body.code === 'SOLD_OUT'; i++) {
        // another node's sold-out flag lasts a second at most
        await new Promise((resolve) => setTimeout(resolve, 100));
        second = await client.purchase(saleId, 'second-buyer');
      }
      assert.equal(second.status, 202, `the expired unit sells again: ${JSON.stringify(second.body)}`);
      await client.drained(saleId);
      const sale = await node.db.getSale(saleId);
      assert.equal(sale!.sold, 1, 'one live order holds the one unit');
      const counts = await node.db.countOrders(saleId);
      assert.deepEqual(counts, { created: 1, paid: 0, expired: 1, cancelled: 0 });
      assert.equal((await client.stats(saleId)).body.remaining, 0);
    });

    it('lets an order paid inside its window stay paid', async () => {
      const { client } = app;
      const saleId = await client.createSale(1, { paymentWindowSeconds: 2 });
      const bought = await client.purchase(saleId, 'quick-payer');
      await client.drained(saleId);
      const pay = await client.request('POST', `/api/orders/${bought.body.orderId}/pay`, { token: client.tokenFor('quick-payer') });
      assert.equal(pay.status, 200);
      await new Promise((resolve) => setTimeout(resolve, 2300));
      const order = await client.request('GET', `/api/orders/${bought.body.orderId}`, { token: client.tokenFor('quick-payer') });
      assert.equal(order.body.status, 'paid');
      assert.equal((await client.stats(saleId)).body.remaining, 0);
    });
  });
}
