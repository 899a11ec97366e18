import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createStockStore, MemoryStockStore, RedisStockStore, ReleaseCode, ReserveCode } from '../src/stock/index.js';
import type { RedisStockStoreOptions, ReserveResult, StockStore } from '../src/stock/index.js';
import { startRedis, waitUntilReplicaAcknowledges } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';

const BACKENDS = ['memory', 'redis'] as const;

/** A fixed instant in the middle of a second, so a burst of attempts shares one rate-limit window. */
const NOW = 1_800_000_000_500;

/** Warms `saleId` with `stock` units, nobody having bought yet. */
function warmSale(store: StockStore, saleId: number, stock: number, epoch = 'epoch-1'): Promise<void> {
  return store.warm({ saleId, stock, remaining: stock, epoch, buyers: [], released: [] });
}

function buy(store: StockStore, saleId: number, userId: string, options: { perUserLimit?: number; now?: number } = {}) {
  return store.reserve({
    saleId,
    userId,
    orderId: `order-${saleId}-${userId}-${Math.random().toString(36).slice(2)}`,
    now: options.now ?? NOW,
    perUserLimit: options.perUserLimit ?? 0,
  });
}

/** `count` purchases by `user-0` … in `saleId`, 500 at a time; returns user id → order id. */
async function buyMany(store: StockStore, saleId: number, count: number): Promise<Map<string, string>> {
  const orders = new Map<string, string>();
  for (let from = 0; from < count; from += 500) {
    const users = Array.from({ length: Math.min(500, count - from) }, (_, i) => `user-${from + i}`);
    const results = await Promise.all(users.map((user) => buy(store, saleId, user)));
    results.forEach((result, i) => {
      assert.equal(result.code, ReserveCode.Reserved);
      orders.set(users[i], result.orderId!);
    });
  }
  return orders;
}

function countCodes(results: readonly ReserveResult[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const { code } of results) counts.set(code, (counts.get(code) ?? 0) + 1);
  return counts;
}

/** Waits until a Redis client is connected again (after a restart of the server). */
async function untilReachable(store: StockStore): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await store.ping())) {
    if (Date.now() > deadline) throw new Error('the store did not reconnect to Redis within 10 s');
    await sleep(50);
  }
}

for (const backend of BACKENDS) {
  describe(`${backend}: stock store`, () => {
    let redis: RedisServer | undefined;
    let store: StockStore;

    function openStore(options: RedisStockStoreOptions = {}): Promise<StockStore> {
      if (backend === 'memory') return Promise.resolve(new MemoryStockStore({ durableTimeoutMs: 300 }));
      return RedisStockStore.connect(redis!.url, options);
    }

    before(async () => {
      if (backend === 'redis') redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });
    beforeEach(async () => {
      await redis?.flushAll();
      store = await openStore();
    });
    afterEach(async () => {
      await store.close();
    });

    it('sells exactly the stock to 2,000 concurrent distinct buyers', async () => {
      await warmSale(store, 1, 100);
      const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => buy(store, 1, `user-${i}`)));

      const codes = countCodes(results);
      assert.equal(codes.get(ReserveCode.Reserved), 100);
      assert.equal(codes.get(ReserveCode.SoldOut), 1900);
      const snapshot = await store.snapshot(1);
      assert.deepEqual(snapshot, { remaining: 0, epoch: 'epoch-1', pending: 100 });
      const reserved = results.filter((r) => r.code === ReserveCode.Reserved).map((r) => r.orderId);
      const queued = (await store.queuedOrders(1)).map((order) => order.orderId);
      assert.deepEqual(new Set(queued), new Set(reserved), 'the queue holds exactly the reserved orders');
      assert.equal(queued.length, 100);
    });

    it('serves a burst in arrival order, whatever sales, limits and repeat buyers it mixes', async () => {
      // Redis sends the reservations of a sale made in one turn of the event loop as one
      // script call; each buyer must still get exactly what it would get alone, in order.
      await warmSale(store, 1, 3);
      await warmSale(store, 2, 1);
      const burst = [
        buy(store, 1, 'ann'),
        buy(store, 2, 'bob'),
        buy(store, 1, 'ann'),
        buy(store, 1, 'cid', { perUserLimit: 1 }),
        buy(store, 1, 'cid', { perUserLimit: 1 }),
        buy(store, 2, 'dan'),
        buy(store, 1, 'eve'),
        buy(store, 1, 'fay'),
        buy(store, 404, 'gus'),
      ];
      const [ann, bob, annAgain, cid, cidAgain, dan, eve, fay, gus] = await Promise.all(burst);
      assert.equal(ann.code, ReserveCode.Reserved);
      assert.deepEqual(annAgain, { code: ReserveCode.Duplicate, orderId: ann.orderId }, 'a repeat in the same burst gets the first order');
      assert.equal(bob.code, ReserveCode.Reserved);
      assert.equal(dan.code, ReserveCode.SoldOut, 'sale 2 had one unit, taken by bob who came first');
      assert.equal(cid.code, ReserveCode.Reserved);
      assert.equal(cidAgain.code, ReserveCode.RateLimited, 'the second attempt in the same second is over a limit of 1');
      assert.equal(eve.code, ReserveCode.Reserved);
      assert.equal(fay.code, ReserveCode.SoldOut, 'ann, cid and eve took the three units of sale 1');
      assert.equal(gus.code, ReserveCode.NotWarmed);
      assert.deepEqual(await store.snapshot(1), { remaining: 0, epoch: 'epoch-1', pending: 3 });
      assert.deepEqual(await store.snapshot(2), { remaining: 0, epoch: 'epoch-1', pending: 1 });
    });

    it('counts and lists the users who hold an order in a sale', async () => {
      await warmSale(store, 1, 5000);
      const orders = await buyMany(store, 1, 2500);
      assert.equal(await store.buyerCount(1), 2500);
      assert.equal(await store.buyerCount(404), 0);
      const listed: string[] = [];
      for await (const users of store.buyers(1)) listed.push(...users);
      assert.deepEqual(new Set(listed), new Set(orders.keys()));
      const none: string[] = [];
      for await (const users of store.buyers(404)) none.push(...users);
      assert.deepEqual(none, []);
    });

    it('returns the same order to a user who retries 20 times concurrently', async () => {
      await warmSale(store, 1, 10);
      const results = await Promise.all(Array.from({ length: 20 }, () => buy(store, 1, 'alice')));

      const codes = countCodes(results);
      assert.equal(codes.get(ReserveCode.Reserved), 1);
      assert.equal(codes.get(ReserveCode.Duplicate), 19);
      assert.equal(new Set(results.map((r) => r.orderId)).size, 1, 'every answer names the one order');
      assert.equal((await store.snapshot(1))?.remaining, 9);
      assert.equal((await store.queuedOrders(1)).length, 1);
    });

    it('slows a user who keeps retrying, while retries within the limit get their order back', async () => {
      await warmSale(store, 1, 10);
      const first = await buy(store, 1, 'alice', { perUserLimit: 3 });
      const retries = [];
      for (let i = 0; i < 4; i++) retries.push(await buy(store, 1, 'alice', { perUserLimit: 3 }));

      assert.equal(first.code, ReserveCode.Reserved);
      assert.deepEqual(retries, [
        { code: ReserveCode.Duplicate, orderId: first.orderId },
        { code: ReserveCode.Duplicate, orderId: first.orderId },
        { code: ReserveCode.RateLimited },
        { code: ReserveCode.RateLimited },
      ]);
      assert.equal((await store.snapshot(1))?.remaining, 9, 'one unit taken');
    });

    it('limits a user to N attempts per second', async () => {
      await warmSale(store, 1, 0);
      const burst = [];
      for (let i = 0; i < 5; i++) burst.push((await buy(store, 1, 'bob', { perUserLimit: 3 })).code);
      const otherUser = await buy(store, 1, 'carol', { perUserLimit: 3 });
      const nextSecond = await buy(store, 1, 'bob', { perUserLimit: 3, now: NOW + 1000 });

      assert.deepEqual(burst, [
        ReserveCode.SoldOut,
        ReserveCode.SoldOut,
        ReserveCode.SoldOut,
        ReserveCode.RateLimited,
        ReserveCode.RateLimited,
      ]);
      assert.equal(otherUser.code, ReserveCode.SoldOut, 'another user has their own limit');
      assert.equal(nextSecond.code, ReserveCode.SoldOut, 'the limit starts over the next second');
    });

    it('refuses a sale whose state was lost (NotWarmed) until it is warmed again', async () => {
      await warmSale(store, 1, 5);
      const sold = await buy(store, 1, 'alice');
      if (redis) await redis.flushAll();
      else await store.pause(1);

      assert.equal((await buy(store, 1, 'bob')).code, ReserveCode.NotWarmed);
      assert.equal(await store.release(1, sold.orderId!), ReleaseCode.NotWarmed);
      assert.equal(await store.snapshot(1), null);

      await store.warm({ saleId: 1, stock: 5, remaining: 4, epoch: 'epoch-2', buyers: [['alice', sold.orderId!]], released: [] });
      assert.deepEqual(await buy(store, 1, 'alice'), { code: ReserveCode.Duplicate, orderId: sold.orderId });
      assert.equal((await buy(store, 1, 'bob')).code, ReserveCode.Reserved);
      assert.deepEqual(await store.snapshot(1), { remaining: 3, epoch: 'epoch-2', pending: backend === 'redis' ? 1 : 2 });
    });

    it('refuses purchases while a sale is paused', async () => {
      await warmSale(store, 1, 5);
      await store.pause(1);

      assert.equal((await buy(store, 1, 'alice')).code, ReserveCode.NotWarmed);
      assert.equal(await store.snapshot(1), null);
    });

    it('gives a unit back exactly once however often release is called', async () => {
      await warmSale(store, 1, 3);
      const { orderId } = await buy(store, 1, 'alice');
      const codes = await Promise.all(Array.from({ length: 10 }, () => store.release(1, orderId!)));

      assert.equal(codes.filter((code) => code === ReleaseCode.Released).length, 1);
      assert.equal(codes.filter((code) => code === ReleaseCode.AlreadyReleased).length, 9);
      assert.equal((await store.snapshot(1))?.remaining, 3);
    });

    it('keeps queued orders and their buyers when a sale is warmed again', async () => {
      await warmSale(store, 1, 5);
      const queued = await buy(store, 1, 'alice');
      await store.warm({ saleId: 1, stock: 5, remaining: 4, epoch: 'epoch-2', buyers: [], released: [] });

      assert.equal(await store.findQueued(1, queued.orderId!), 'alice');
      assert.deepEqual(await buy(store, 1, 'alice'), { code: ReserveCode.Duplicate, orderId: queued.orderId });
      assert.equal((await store.snapshot(1))?.pending, 1);
    });

    it('remembers every buyer and released order of a large warm-up', async () => {
      const buyers = Array.from({ length: 2500 }, (_, i) => [`user-${i}`, `order-${i}`] as const);
      const released = Array.from({ length: 1500 }, (_, i) => `order-${i}`);
      await store.warm({ saleId: 1, stock: 3000, remaining: 2000, epoch: 'big', buyers, released });

      assert.deepEqual(await buy(store, 1, 'user-2499'), { code: ReserveCode.Duplicate, orderId: 'order-2499' });
      assert.deepEqual(await buy(store, 1, 'user-0'), { code: ReserveCode.Duplicate, orderId: 'order-0' });
      assert.equal(await store.release(1, 'order-1499'), ReleaseCode.AlreadyReleased);
      assert.equal(await store.release(1, 'order-1500'), ReleaseCode.Released);
      assert.equal((await store.snapshot(1))?.remaining, 2001);
    });

    it('refuses a warm-up that would oversell, changing nothing', async () => {
      await warmSale(store, 1, 5);
      await assert.rejects(
        store.warm({ saleId: 1, stock: 5, remaining: 6, epoch: 'bad', buyers: [], released: [] }),
        /remaining \(6\) must be an integer from 0 to stock \(5\)/,
      );
      assert.deepEqual(await store.snapshot(1), { remaining: 5, epoch: 'epoch-1', pending: 0 });
    });

    it('hands an unacknowledged entry to another consumer after claimIdleMs', async () => {
      await warmSale(store, 1, 5);
      await Promise.all(['a', 'b', 'c'].map((user) => buy(store, 1, user)));

      const first = await store.readOrders('writer-1', [1], 10, 100);
      const tooEarly = await store.readOrders('writer-2', [1], 10, 100);
      await sleep(150);
      const claimed = await store.readOrders('writer-2', [1], 10, 100);

      assert.equal(first.length, 3);
      assert.ok(first.every((order) => order.deliveries === 1 && order.saleId === 1));
      assert.deepEqual(tooEarly, [], 'a busy writer keeps its entries');
      assert.deepEqual(
        claimed.map((order) => [order.entryId, order.orderId, order.deliveries]),
        first.map((order) => [order.entryId, order.orderId, 2]),
      );
    });

    it('hands out entries taken over from a dead writer first, then new ones, in one read', async () => {
      await warmSale(store, 1, 5);
      for (const user of ['a', 'b', 'c']) await buy(store, 1, user);
      const abandoned = await store.readOrders('writer-1', [1], 2, 100);
      await sleep(150);

      const read = await store.readOrders('writer-2', [1], 10, 100);

      assert.deepEqual(
        read.map((order) => [order.userId, order.deliveries]),
        [['a', 2], ['b', 2], ['c', 1]],
      );
      assert.deepEqual(read.slice(0, 2).map((order) => order.entryId), abandoned.map((order) => order.entryId));
    });

    it('keeps exactly the unacknowledged entries queued however the writers finish', async () => {
      await warmSale(store, 1, 10);
      for (const user of ['a', 'b', 'c', 'd', 'e', 'f']) await buy(store, 1, user);
      const early = await store.readOrders('writer-1', [1], 2, 60_000);
      const late = await store.readOrders('writer-2', [1], 2, 60_000);
      const queued = async (): Promise<string[]> => (await store.queuedOrders(1)).map((order) => order.userId);

      // The later batch is committed first: the earlier one is still in the queue, below it.
      await store.ackOrders(1, late);
      assert.deepEqual(await queued(), ['a', 'b', 'e', 'f']);
      assert.equal((await store.snapshot(1))?.pending, 4);
      await store.ackOrders(1, early);
      assert.deepEqual(await queued(), ['e', 'f'], 'undelivered entries stay');
      assert.equal((await store.snapshot(1))?.pending, 2);
      await store.ackOrders(1, early);
      assert.deepEqual(await queued(), ['e', 'f'], 'an acknowledgement replayed removes nothing else');

      const rest = await store.readOrders('writer-1', [1], 10, 60_000);
      assert.deepEqual(rest.map((order) => order.userId), ['e', 'f']);
      await store.ackOrders(1, rest.slice(1));
      assert.deepEqual(await queued(), ['e'], 'an entry still pending stays, though later ones were acknowledged');
      await store.ackOrders(1, rest.slice(0, 1));
      assert.deepEqual(await queued(), []);
      assert.equal((await store.snapshot(1))?.pending, 0);
    });

    it('removes acknowledged entries from the queue', async () => {
      await warmSale(store, 1, 5);
      await Promise.all(['a', 'b', 'c'].map((user) => buy(store, 1, user)));
      const taken = await store.readOrders('writer-1', [1], 10, 60_000);
      const [done1, done2, open] = taken;

      await store.ackOrders(1, [done1, done2]);

      assert.deepEqual((await store.queuedOrders(1)).map((order) => order.orderId), [open.orderId]);
      assert.equal((await store.snapshot(1))?.pending, 1);
      assert.equal(await store.findQueued(1, done1.orderId), null);
      assert.equal(await store.findQueued(1, open.orderId), open.userId);
      await sleep(20);
      const again = await store.readOrders('writer-2', [1], 10, 10);
      assert.deepEqual(again.map((order) => order.orderId), [open.orderId], 'acknowledged entries are never handed out again');
    });

    it('moves a poison entry out of the queue so no writer gets it again', async () => {
      await warmSale(store, 1, 5);
      await buy(store, 1, 'mallory');
      const [poison] = await store.readOrders('writer-1', [1], 10, 60_000);

      await store.deadLetter(poison, 'violates a database constraint');
      await store.deadLetter(poison, 'violates a database constraint');

      assert.deepEqual(await store.queuedOrders(1), []);
      assert.equal(await store.findQueued(1, poison.orderId), null);
      await sleep(20);
      assert.deepEqual(await store.readOrders('writer-2', [1], 10, 10), []);
    });

    it('hands out at most `count` entries per read across sales, each entry once', async () => {
      await warmSale(store, 1, 50);
      await warmSale(store, 2, 50);
      await Promise.all(Array.from({ length: 10 }, (_, i) => [buy(store, 1, `u${i}`), buy(store, 2, `u${i}`)]).flat());

      const seen = new Set<string>();
      for (let reads = 0; reads < 20 && seen.size < 20; reads++) {
        const batch = await store.readOrders('writer-1', [1, 2], 3, 60_000);
        assert.ok(batch.length <= 3, `a read of 3 returned ${batch.length}`);
        for (const order of batch) {
          assert.ok(!seen.has(order.orderId), `${order.orderId} was handed out twice`);
          seen.add(order.orderId);
        }
      }
      assert.equal(seen.size, 20);
    });

    it('hands a full batch from the one busy sale when the other registered sales are drained', async () => {
      for (let saleId = 1; saleId <= 5; saleId++) {
        await warmSale(store, saleId, 10);
        await Promise.all(['a', 'b'].map((user) => buy(store, saleId, user)));
        await store.ackOrders(saleId, await store.readOrders('writer-1', [saleId], 10, 60_000));
        assert.equal((await store.snapshot(saleId))?.pending, 0, `sale ${saleId} is drained`);
      }
      await warmSale(store, 6, 2000);
      await buyMany(store, 6, 1200);

      const batch = await store.readOrders('writer-1', [1, 2, 3, 4, 5, 6], 1000, 60_000);

      assert.equal(batch.length, 1000, 'the drained sales do not shrink the batch');
      assert.ok(batch.every((order) => order.saleId === 6 && order.deliveries === 1));
      assert.equal(new Set(batch.map((order) => order.entryId)).size, 1000);
      const queued = await store.queuedOrders(6);
      assert.equal(queued.filter((order) => order.deliveries === 0).length, 200, 'nothing was read without being handed out');
      const rest = await store.readOrders('writer-1', [1, 2, 3, 4, 5, 6], 1000, 60_000);
      assert.equal(rest.length, 200);
    });

    it('shares a read among the busy sales, however many drained ones are registered', async () => {
      for (let saleId = 1; saleId <= 6; saleId++) await warmSale(store, saleId, 1000);
      await buyMany(store, 2, 600);
      await buyMany(store, 5, 600);

      const batch = await store.readOrders('writer-1', [1, 2, 3, 4, 5, 6], 1000, 60_000);

      assert.equal(batch.length, 1000);
      const fromSale2 = batch.filter((order) => order.saleId === 2).length;
      assert.ok(fromSale2 >= 400 && fromSale2 <= 600, `sale 2 got ${fromSale2} of 1000`);
      assert.equal(batch.length - fromSale2, batch.filter((order) => order.saleId === 5).length);
    });

    it('acknowledges a batch larger than the ack script takes at once, and an acknowledgement replayed changes nothing', async () => {
      await warmSale(store, 1, 3000);
      const buyers = await buyMany(store, 1, 2500);
      const batch = await store.readOrders('writer-1', [1], 2500, 60_000);
      assert.equal(batch.length, 2500);

      await store.ackOrders(1, batch);
      await store.ackOrders(1, batch);

      assert.deepEqual(await store.queuedOrders(1), []);
      assert.equal((await store.snapshot(1))?.pending, 0);
      assert.equal(await store.findQueued(1, batch[0].orderId), null);
      assert.equal(await store.findQueued(1, batch[2499].orderId), null);
      assert.deepEqual(await buy(store, 1, 'user-1234'), { code: ReserveCode.Duplicate, orderId: buyers.get('user-1234') });
      if (redis) {
        const raw = new Redis(redis.url);
        try {
          assert.equal(await raw.exists('seckill:{sale:1}:holders'), 0, 'every order was forgotten as queued');
        } finally {
          raw.disconnect();
        }
      }
    });

    it('lists every sale ever warmed', async () => {
      await warmSale(store, 7, 1);
      await warmSale(store, 3, 1);
      await store.pause(7);

      assert.deepEqual(await store.saleIds(), [3, 7]);
    });

    it('limits an IP to N requests per second', async () => {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await store.allowIp('203.0.113.9', 3, NOW));

      assert.deepEqual(answers, [true, true, true, false]);
      assert.equal(await store.allowIp('203.0.113.10', 3, NOW), true, 'another IP has its own limit');
      assert.equal(await store.allowIp('203.0.113.9', 3, NOW + 1000), true, 'the limit starts over the next second');
      assert.equal(await store.allowIp('203.0.113.9', 0, NOW), true, '0 means no limit');
    });

    it('answers ping with true while it can serve purchases', async () => {
      assert.equal(await store.ping(), true);
    });

    if (backend === 'memory') {
      it('memory: resolves awaitDurable only after the entry is acknowledged', async () => {
        await warmSale(store, 1, 5);
        const { orderId } = await buy(store, 1, 'alice');
        let settled: boolean | undefined;
        const durable = store.awaitDurable(1, orderId!).then((value) => (settled = value));

        await sleep(30);
        assert.equal(settled, undefined, 'not durable while the order is only queued');
        const [entry] = await store.readOrders('writer', [1], 10, 60_000);
        await store.ackOrders(1, [entry]);
        assert.equal(await durable, true);
        assert.equal(await store.awaitDurable(1, orderId!), true, 'an acknowledged order stays durable');
      });

      it('memory: answers awaitDurable with false when no writer acknowledges in time or the order is dead-lettered', async () => {
        await warmSale(store, 1, 5);
        const slow = await buy(store, 1, 'alice');
        const poison = await buy(store, 1, 'mallory');
        const started = Date.now();

        const poisonDurable = store.awaitDurable(1, poison.orderId!);
        const entries = await store.readOrders('writer', [1], 10, 60_000);
        await store.deadLetter(entries.find((entry) => entry.orderId === poison.orderId)!, 'bad row');

        assert.equal(await poisonDurable, false);
        assert.equal(await store.awaitDurable(1, slow.orderId!), false);
        assert.ok(Date.now() - started >= 250, 'false only after the timeout');
      });

      it('memory: wakes the in-process writer once when orders are queued', async () => {
        const memory = store as MemoryStockStore;
        let wakeUps = 0;
        const stop = memory.onEnqueue(() => wakeUps++);
        await warmSale(store, 1, 5);

        await Promise.all(['a', 'b', 'c'].map((user) => buy(store, 1, user)));
        await sleep(0);
        stop();
        await buy(store, 1, 'd');
        await sleep(0);

        assert.equal(wakeUps, 1);
      });
    }

    if (backend === 'redis') {
      it('redis: skips a sale whose queue vanished until it is warmed again, then delivers new orders', async () => {
        await warmSale(store, 1, 5);
        await buy(store, 1, 'alice');
        await redis!.flushAll();

        assert.deepEqual(await store.readOrders('writer-1', [1], 10, 60_000), []);
        await warmSale(store, 1, 5, 'epoch-2');
        await buy(store, 1, 'bob');
        assert.deepEqual((await store.readOrders('writer-1', [1], 10, 60_000)).map((order) => order.userId), ['bob']);
      });

      it('redis: keeps selling after Redis restarts empty, once the sale is warmed again', async () => {
        await warmSale(store, 1, 5);
        await redis!.restart();
        await untilReachable(store);

        assert.equal((await buy(store, 1, 'alice')).code, ReserveCode.NotWarmed);
        await warmSale(store, 1, 5, 'epoch-2');
        assert.equal((await buy(store, 1, 'alice')).code, ReserveCode.Reserved, 'scripts are sent again to the new server');
      });

      it('redis: answers ping with false within the command timeout when Redis hangs', async () => {
        const hung = await openStore({ commandTimeoutMs: 300 });
        try {
          redis!.kill('SIGSTOP');
          const started = Date.now();
          const answer = await hung.ping();
          const elapsed = Date.now() - started;
          redis!.kill('SIGCONT');

          assert.equal(answer, false);
          assert.ok(elapsed < 1000, `ping took ${elapsed} ms`);
        } finally {
          redis!.kill('SIGCONT');
          await hung.close();
        }
      });

      it('redis: refuses to start when Redis is unreachable, saying where it tried', async () => {
        await assert.rejects(
          RedisStockStore.connect('redis://127.0.0.1:1/0', { connectTimeoutMs: 300 }),
          /could not connect to Redis at redis:\/\/127\.0\.0\.1:1\/0 within 300 ms/,
        );
      });

      it('redis: keeps every key of a sale in one hash tag under the prefix', async () => {
        const prefixed = await openStore({ keyPrefix: 'shop-a:' });
        const raw = new Redis(redis!.url);
        try {
          await warmSale(prefixed, 4, 2);
          await buy(prefixed, 4, 'alice', { perUserLimit: 5 });
          const keys = (await raw.keys('*')).sort();
          assert.deepEqual(keys.filter((key) => !key.includes('{sale:4}')), ['shop-a:sales']);
          assert.ok(keys.every((key) => key.startsWith('shop-a:')), keys.join(' '));
          assert.ok(keys.includes('shop-a:{sale:4}:orders'));
        } finally {
          raw.disconnect();
          await prefixed.close();
        }
      });

      it('redis: lets every rate-limit counter expire, even from a second with a single purchase', async () => {
        const raw = new Redis(redis!.url);
        try {
          await warmSale(store, 5, 10);
          await buy(store, 5, 'alone', { perUserLimit: 3, now: NOW });
          await Promise.all(['x', 'y', 'x'].map((user) => buy(store, 5, user, { perUserLimit: 3, now: NOW + 1000 })));
          const counters = await raw.keys('*:rl:*');
          assert.equal(counters.length, 2, counters.join(' '));
          for (const key of counters) {
            const ttl = await raw.pttl(key);
            assert.ok(ttl > 0 && ttl <= 2000, `${key} expires (PTTL ${ttl})`);
          }
        } finally {
          raw.disconnect();
        }
      });

      it('redis: confirms durability only when a replica has the order', async () => {
        const primary = new Redis(redis!.url);
        // The default waits 5 s for more replicas before the first sync.
        await primary.config('SET', 'repl-diskless-sync-delay', '0');
        primary.disconnect();
        const replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(redis!.port)] });
        const raw = new Redis(replica.url, { lazyConnect: true });
        const durableStore = await openStore({ durability: 'replica', replicaTimeoutMs: 200 });
        try {
          for (let i = 0; ; i++) {
            if ((await raw.info('replication')).includes('master_link_status:up')) break;
            assert.ok(i < 200, 'the replica did not connect within 10 s');
            await sleep(50);
          }
          raw.disconnect();
          await waitUntilReplicaAcknowledges(redis!.url);
          await warmSale(durableStore, 1, 5);
          const { orderId } = await buy(durableStore, 1, 'alice');
          assert.equal(await durableStore.awaitDurable(1, orderId!), true);
          const crowd = await Promise.all(
            Array.from({ length: 200 }, async (_, i) => {
              const result = await buy(durableStore, 1, `crowd-${i}`);
              return durableStore.awaitDurable(1, result.orderId ?? 'sold-out');
            }),
          );
          assert.ok(crowd.every(Boolean), 'concurrent purchases share WAITs and are all confirmed');

          await replica.stop();
          const lonely = await buy(durableStore, 1, 'bob');
          const started = Date.now();
          assert.equal(await durableStore.awaitDurable(1, lonely.orderId!), false, 'no replica confirmed it');
          assert.ok(Date.now() - started < 1000);
        } finally {
          raw.disconnect();
          await durableStore.close();
          await replica.stop();
        }
      });
    }
  });
}

describe('createStockStore', () => {
  it('serves from memory when no Redis URL is configured', async () => {
    const store = await createStockStore({ redisUrl: '' });
    assert.equal(store.kind, 'memory');
    await store.close();
  });
});
