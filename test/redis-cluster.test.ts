/**
 * Redis Cluster support: reading `redis-cluster://` URLs, the stock store on a real
 * three-master cluster (sales on different masters, scripts after a script-cache flush), and
 * the whole purchase path on it with SQLite: no oversell, one order per user, every accepted
 * order persisted, and a sale whose master lost its data rebuilt by the writer's repair;
 * with a replica per master and durability replica, orders confirmed on the replica and a
 * master killed mid-sale: its replica promoted, nothing acknowledged lost.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { keySlot } from '../src/ha/redis-cluster-slot.js';
import { parseRedisUrl, RedisUrlError } from '../src/ha/redis-url.js';
import { RedisStockStore, ReserveCode } from '../src/stock/index.js';
import { inParallel } from './support/app-client.js';
import { runCli } from './support/app-process.js';
import { startTestNode, TEST_SECRETS } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedisCluster } from './support/redis-cluster.js';
import type { ClusterNode, RedisClusterGroup } from './support/redis-cluster.js';
import { freshDatabaseUrl } from './support/servers.js';

/** The key every sale's state lives under with the default prefix (see `stock-keys.ts`). */
const stateKey = (saleId: number): string => `seckill:{sale:${saleId}}:state`;

describe('redis-cluster:// URLs', () => {
  it('reads seed nodes and a password, with default port 6379', () => {
    assert.deepEqual(parseRedisUrl('redis-cluster://10.0.0.1:7000,10.0.0.2:7001,node-c'), {
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'node-c', port: 6379 },
      ],
    });
    assert.deepEqual(parseRedisUrl('redis-cluster://app:p%40ss,w/rd@[::1]:7000/'), {
      kind: 'cluster',
      nodes: [{ host: '::1', port: 7000 }],
      username: 'app',
      password: 'p@ss,w/rd',
    });
  });

  it('refuses what a cluster cannot be, naming the problem and the syntax', () => {
    const cases: [string, RegExp][] = [
      ['redis-cluster://', /a node address is empty.*redis-cluster:\/\//],
      ['redis-cluster://h1:1,,h2:2', /a node address is empty/],
      ['redis-cluster://h1:99999', /port of node "h1:99999" must be from 1 to 65535/],
      ['redis-cluster://h1:1/2', /database number .* not allowed/],
      ['redis-cluster://h1:1?db=2', /options .* not supported/],
    ];
    for (const [url, message] of cases) assert.throws(() => parseRedisUrl(url), (e: Error) => e instanceof RedisUrlError && message.test(e.message), url);
  });

  it('computes the slot of a key as Redis does, hash tags included', () => {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    assert.equal(keySlot('123456789'), 12739);
    assert.equal(keySlot('foo'), 12182);
    assert.equal(keySlot('seckill:{sale:7}:state'), keySlot('sale:7'));
    assert.notEqual(keySlot('{}foo'), keySlot('foo'), 'an empty tag does not count: the whole key is hashed');
  });

  it('stops the configuration on a bad cluster URL without showing the password', () => {
    assert.throws(
      () => loadConfig({ env: { SECKILL_REDIS_URL: 'redis-cluster://:s3cret@h1:1,,h2:2' } }),
      (e: Error) => e instanceof ConfigError && /SECKILL_REDIS_URL/.test(e.message) && /node address is empty/.test(e.message) && !e.message.includes('s3cret'),
    );
    assert.equal(loadConfig({ env: { SECKILL_REDIS_URL: 'redis-cluster://:s3cret@h1:1,h2:2' } }).redisUrl, 'redis-cluster://:s3cret@h1:1,h2:2');
  });
});

describe('Redis Cluster (3 masters)', () => {
  let cluster: RedisClusterGroup;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  describe('stock store', () => {
    let store: RedisStockStore;
    before(async () => {
      store = await RedisStockStore.connect(cluster.url, { keyPrefix: 'store-test:' });
    });
    after(async () => {
      await store?.close();
    });

    it('serves sales on different masters, and its scripts after every master forgot them', async () => {
      // Sale ids whose keys land on every master.
      const byMaster = new Map<string, number>();
      for (let id = 1; byMaster.size < cluster.masters.length && id < 100; id++) {
        const owner = await cluster.masterOf(`store-test:{sale:${id}}:state`);
        if (!byMaster.has(owner.name)) byMaster.set(owner.name, id);
      }
      const saleIds = [...byMaster.values()];
      assert.equal(saleIds.length, 3, 'the three masters each own a sale');
      for (const saleId of saleIds) await store.warm({ saleId, stock: 5, remaining: 5, epoch: `e${saleId}`, buyers: [], released: [] });
      assert.deepEqual(await store.saleIds(), [...saleIds].sort((a, b) => a - b));

      // A restarted or promoted node has an empty script cache: calls must still work.
      for (const master of cluster.masters) assert.equal(await cluster.call(master.port, ['SCRIPT', 'FLUSH']), 'OK');
      for (const saleId of saleIds) {
        for (let i = 0; i < 7; i++) {
          const result = await store.reserve({ saleId, userId: `u${i}`, orderId: `o-${saleId}-${i}`, now: Date.now(), perUserLimit: 0 });
          assert.equal(result.code, i < 5 ? ReserveCode.Reserved : ReserveCode.SoldOut);
        }
      }
      const read = await store.readOrders('consumer-1', saleIds, 100, 60_000);
      assert.equal(read.length, 15, 'one read hands out the queues of all three masters');
      for (const saleId of saleIds) {
        await store.ackOrders(saleId, read.filter((o) => o.saleId === saleId));
        assert.deepEqual(await store.snapshot(saleId), { remaining: 0, epoch: `e${saleId}`, pending: 0 });
      }
      assert.equal(await store.ping(), true);
    });
  });

  describe('purchase on Redis Cluster + SQLite', () => {
    let app: TestNode;
    before(async () => {
      app = await startTestNode({
        databaseUrl: await freshDatabaseUrl('sqlite'),
        redisUrl: cluster.url,
        rateLimitPerUser: 0,
        // No periodic repair: it can pause a sale created a moment ago (it sees the sale in the
        // database before its warm-up lands) and answer its first buyers 503, which the exact
        // counts below would take for a fault. The loss test repairs with `seckill reconcile`.
        reconcileIntervalMs: 0,
      });
    });
    after(async () => {
      await app?.stop();
    });

    /** Creates sales until there are `count`, owned by at least two masters; returns them with their masters. */
    async function createSpreadSales(count: number, stock: number): Promise<Map<number, ClusterNode>> {
      const sales = new Map<number, ClusterNode>();
      while (sales.size < count || new Set([...sales.values()].map((m) => m.name)).size < 2) {
        const saleId = await app.client.createSale(stock);
        sales.set(saleId, await cluster.masterOf(stateKey(saleId)));
        if (sales.size > count + 10) throw new Error('sales keep landing on one master');
      }
      return sales;
    }

    it('sells exactly the stock of each sale to 2,000 concurrent distinct buyers, sales on different masters', async () => {
      const { client, node } = app;
      const sales = await createSpreadSales(3, 100);
      assert.ok(new Set([...sales.values()].map((m) => m.name)).size >= 2, 'the sales live on at least two masters');
      const saleIds = [...sales.keys()];
      // Buyers of all sales interleaved, so every master is busy at once.
      const attempts = Array.from({ length: 2000 }, (_, i) => saleIds.map((saleId) => ({ saleId, user: `buyer-${i}` }))).flat();
      const answers = await inParallel(attempts, 200, async ({ saleId, user }) => ({ saleId, answer: await client.purchase(saleId, user) }));

      for (const saleId of saleIds) {
        const mine = answers.filter((a) => a.saleId === saleId).map((a) => a.answer);
        const byStatus = new Map<string, number>();
        for (const a of mine) byStatus.set(`${a.status} ${a.body.code ?? ''}`, (byStatus.get(`${a.status} ${a.body.code ?? ''}`) ?? 0) + 1);
        const accepted = mine.filter((a) => a.status === 202);
        assert.equal(accepted.length, 100, `sale ${saleId} answers by status: ${JSON.stringify([...byStatus])}`);
        assert.equal(mine.filter((a) => a.status === 409 && a.body.code === 'SOLD_OUT').length, 1900);

        await client.drained(saleId);
        assert.equal((await node.db.countOrders(saleId)).created, 100, `exactly the stock of sale ${saleId} is in the database`);
        assert.equal((await node.db.getSale(saleId))!.sold, 100);
        const owners = new Set<string>();
        for (const a of accepted) {
          const order = await node.db.getOrder(a.body.orderId!);
          assert.ok(order, `order ${a.body.orderId} answered 202 is in the database`);
          assert.equal(order.saleId, saleId);
          assert.ok(!owners.has(order.userId), `user ${order.userId} holds one order in sale ${saleId}`);
          owners.add(order.userId);
        }
        const stats = await client.stats(saleId);
        assert.deepEqual([stats.body.remaining, stats.body.pending, stats.body.created], [0, 0, 100]);
      }
    });

    it('gives a user who retries 20 times at once one order', async () => {
      const { client, node } = app;
      const saleId = await client.createSale(10);
      const answers = await Promise.all(Array.from({ length: 20 }, () => client.purchase(saleId, 'eager-user')));
      const ids = new Set(answers.map((a) => a.body.orderId));
      assert.equal(ids.size, 1, `one order id, got ${JSON.stringify(answers.map((a) => [a.status, a.body]))}`);
      assert.equal(answers.filter((a) => a.status === 202).length, 1);
      assert.equal(answers.filter((a) => a.status === 200).length, 19);
      await client.drained(saleId);
      assert.equal((await node.db.countOrders(saleId)).created, 1);
      assert.equal((await client.stats(saleId)).body.remaining, 9);
    });

    it('rebuilds with `seckill reconcile --repair` a sale whose master lost its data, and drains the sales on the other masters', async () => {
      const { client, node } = app;
      // The master that holds the sale registry too: losing it must not stall the other sales.
      const lost = await cluster.masterOf('seckill:sales');
      let saleA: number | undefined;
      let saleB: number | undefined;
      for (let tries = 0; (saleA === undefined || saleB === undefined) && tries < 30; tries++) {
        const saleId = await client.createSale(20);
        const owner = await cluster.masterOf(stateKey(saleId));
        if (owner.name === lost.name) saleA ??= saleId;
        else saleB ??= saleId;
      }
      assert.ok(saleA !== undefined && saleB !== undefined, 'a sale on the registry master and one elsewhere');
      const before = new Map<string, string>();
      for (let i = 0; i < 5; i++) {
        const a = await client.purchase(saleA, `early-${i}`);
        assert.equal(a.status, 202, JSON.stringify(a.body));
        before.set(`early-${i}`, a.body.orderId!);
        assert.equal((await client.purchase(saleB, `early-${i}`)).status, 202);
      }
      await client.drained(saleA);
      await client.drained(saleB);

      assert.equal(await cluster.call(lost.port, ['FLUSHALL']), 'OK');
      // Sale B's master kept its data: it sells on at once.
      assert.equal((await client.purchase(saleB, 'late-0')).status, 202);

      const refused = await client.purchase(saleA, 'after-loss');
      assert.equal(refused.status, 503, `sale A has no state on its master: ${JSON.stringify(refused.body)}`);
      // Bought after the writers had time to reread the registry (it refreshes its list every 100 ms).
      await sleep(300);
      for (let i = 1; i < 5; i++) assert.equal((await client.purchase(saleB, `late-${i}`)).status, 202);

      const env = { SECKILL_ADMIN_TOKEN: TEST_SECRETS.adminToken, SECKILL_JWT_SECRET: TEST_SECRETS.jwtSecret, SECKILL_DATA_DIR: app.config.dataDir };
      const repair = await runCli(['reconcile', '--repair', '--url', client.baseUrl], env);
      assert.equal(repair.code, 0, repair.stdout + repair.stderr);
      assert.match(repair.stdout, new RegExp(`^${saleA}\\s+ok\\s+20\\s+5\\s+0\\s+15\\s+15\\s+rebuilt`, 'm'), repair.stdout);

      const answer = await client.purchase(saleA, 'after-loss');
      assert.equal(answer.status, 202, `sale A sells again after the repair: ${JSON.stringify(answer.body)}`);
      const retry = await client.purchase(saleA, 'early-0');
      assert.deepEqual([retry.status, retry.body.orderId], [200, before.get('early-0')], 'a buyer from before the loss gets their order back');

      // Sale B's queue is drained although the registry listing it was lost with the other master.
      const deadline = Date.now() + 10_000;
      while ((await node.db.countOrders(saleB)).created < 10 && Date.now() < deadline) await sleep(100);
      assert.equal((await node.db.countOrders(saleB)).created, 10, 'every accepted order of sale B reaches the database');

      await inParallel(Array.from({ length: 60 }, (_, i) => `rush-${i}`), 16, (user) => client.purchase(saleA, user));
      await client.drained(saleA);
      assert.equal((await node.db.countOrders(saleA)).created, 20, 'sale A sells out its stock, no more');
      assert.equal((await client.stats(saleA)).body.remaining, 0);
    });
  });
});

describe('Redis Cluster with a replica per master, durability replica', () => {
  let cluster: RedisClusterGroup;
  let app: TestNode;
  before(async () => {
    cluster = await startRedisCluster({ replicas: 1 });
    app = await startTestNode({
      databaseUrl: await freshDatabaseUrl('sqlite'),
      redisUrl: cluster.url,
      rateLimitPerUser: 0,
      durability: 'replica',
      replicaTimeoutMs: 200,
      reconcileIntervalMs: 0,
    });
  });
  after(async () => {
    await app?.stop();
    await cluster?.stop();
  });

  it("answers 2xx only for orders the replica of the sale's own master has", async () => {
    const { client } = app;
    // Two sales on different masters.
    const sales = new Map<number, ClusterNode>();
    for (let tries = 0; sales.size < 2; tries++) {
      assert.ok(tries < 30, 'sales keep landing on one master');
      const saleId = await client.createSale(50);
      const owner = await cluster.masterOf(stateKey(saleId));
      if (![...sales.values()].includes(owner)) sales.set(saleId, owner);
    }
    const [[saleA, masterA], [saleB]] = [...sales];
    const replicaA = await cluster.replicaOf(masterA);
    assert.equal(keySlot(stateKey(saleA)), Number(await cluster.call(masterA.port, ['CLUSTER', 'KEYSLOT', stateKey(saleA)])), 'our slot function agrees with Redis');

    const answers = await inParallel(Array.from({ length: 40 }, (_, i) => `buyer-${i}`), 20, (user) => client.purchase(saleA, user));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [202], JSON.stringify(answers.map((a) => a.body)));
    for (const [i, a] of answers.entries()) {
      // A replica serves reads of its master's slots after READONLY; the order must be there already.
      const onReplica = await cluster.call(replicaA.port, ['HGET', `seckill:{sale:${saleA}}:buyers`, `buyer-${i}`], 2000, { readonly: true });
      assert.equal(onReplica, a.body.orderId, `the replica of sale ${saleA}'s master has buyer-${i}'s order`);
    }

    // With that replica frozen, sale A cannot be confirmed, while sale B (other master and replica) sells on.
    cluster.kill(replicaA, 'SIGSTOP');
    try {
      const refused = await client.purchase(saleA, 'while-frozen');
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      // A busy machine may miss one 200 ms WAIT; a few tries within a second are still "selling on".
      let other = await client.purchase(saleB, 'while-frozen');
      for (let tries = 1; other.status === 503 && tries < 5; tries++) other = await client.purchase(saleB, 'while-frozen');
      assert.ok(other.status === 202 || other.status === 200, `sale ${saleB} on another master sells on: ${JSON.stringify(other.body)}`);
      assert.equal((await client.purchase(saleA, 'while-frozen')).status, 503, 'sale A still cannot be confirmed');
    } finally {
      cluster.kill(replicaA, 'SIGCONT');
    }
    // Thawed, the replica catches up; the buyer's retry returns the order reserved before (no second one).
    let retry = await client.purchase(saleA, 'while-frozen');
    const started = Date.now();
    while (retry.status === 503 && Date.now() - started < 10_000) {
      await sleep(100);
      retry = await client.purchase(saleA, 'while-frozen');
    }
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(await cluster.call(replicaA.port, ['HGET', `seckill:{sale:${saleA}}:buyers`, 'while-frozen'], 2000, { readonly: true }), retry.body.orderId);
    await client.drained(saleA);
    assert.equal((await app.node.db.countOrders(saleA)).created, 41);
  });

  // Last in this block: it leaves a master dead and then a replica where a master was.
  it("sells through a kill -9 of a sale's master: its replica is promoted, buyers meanwhile get a quick 503, no acknowledged order is lost", async () => {
    const { client } = app;
    const STOCK = 100_000;
    const sales = new Map<number, ClusterNode>();
    for (let tries = 0; sales.size < 2; tries++) {
      assert.ok(tries < 30, 'sales keep landing on one master');
      const saleId = await client.createSale(STOCK);
      const owner = await cluster.masterOf(stateKey(saleId));
      if (![...sales.values()].includes(owner)) sales.set(saleId, owner);
    }
    const [[saleA, masterA], [saleB]] = [...sales];
    const replicaA = await cluster.replicaOf(masterA);

    interface Answered {
      readonly saleId: number;
      readonly user: string;
      readonly status: number;
      readonly orderId?: string;
      readonly at: number;
      readonly ms: number;
    }
    const answers: Answered[] = [];
    let selling = true;
    let next = 0;
    // Two buyers at a time on each sale, every purchase by a new user; a refused one waits a
    // little, as a client honouring Retry-After would, so the loop does not spin.
    const crowd = async (saleId: number): Promise<void> => {
      while (selling) {
        const user = `failover-${saleId}-${next++}`;
        const at = Date.now();
        const answer = await client.purchase(saleId, user);
        answers.push({ saleId, user, status: answer.status, orderId: answer.body.orderId, at, ms: Date.now() - at });
        if (answer.status === 503) await sleep(20);
      }
    };
    const load = Promise.all([saleA, saleA, saleB, saleB].map(crowd));
    const sold = (saleId: number, from: number, to = Number.POSITIVE_INFINITY): number =>
      answers.filter((a) => a.saleId === saleId && a.at >= from && a.at < to && (a.status === 202 || a.status === 200)).length;
    let killedAt = 0;
    let promotedAt = 0;
    let rejoinedAt = 0;
    let recoveredAt = 0;
    try {
      await sleep(500);
      assert.ok(sold(saleA, 0) > 0 && sold(saleB, 0) > 0, 'both sales sell before the kill');
      killedAt = Date.now();
      cluster.kill(masterA, 'SIGKILL');
      // The cluster promotes the replica once the master is past cluster-node-timeout (2 s).
      while ((await cluster.masterOf(stateKey(saleA)).catch(() => masterA)) !== replicaA) {
        assert.ok(Date.now() - killedAt < 20_000, `the replica of ${masterA.name} was not promoted within 20 s`);
        await sleep(100);
      }
      promotedAt = Date.now();
      // With durability replica the promoted master cannot confirm an order until it has a
      // replica again: restart the dead node, which rejoins as the replica of its successor.
      await cluster.restart(masterA);
      rejoinedAt = Date.now();
      while (sold(saleA, rejoinedAt) === 0) {
        assert.ok(Date.now() - rejoinedAt < 20_000, `sale ${saleA} did not sell again within 20 s of its old master's restart`);
        await sleep(100);
      }
      recoveredAt = Date.now();
      await sleep(300);
      // What a buyer notices: sale B sold on while sale A had no master.
      assert.ok(sold(saleB, killedAt, promotedAt) > 0, `sale ${saleB}, on another master, sold nothing between the kill and the promotion`);
    } finally {
      selling = false;
      await load;
    }

    const statuses = new Set(answers.map((a) => a.status));
    assert.deepEqual([...statuses].filter((status) => ![200, 202, 503].includes(status)), [], `only 2xx and 503 answers: ${JSON.stringify([...statuses])}`);
    const slowest = Math.max(...answers.map((a) => a.ms));
    assert.ok(slowest <= 3000, `every purchase answered within 3 s (fail fast), the slowest took ${slowest} ms`);
    assert.ok(answers.some((a) => a.saleId === saleA && a.status === 503), 'sale A refused purchases while it had no confirmed master');

    // Every acknowledged order is in the database, for its buyer, once; the stock adds up.
    for (const saleId of [saleA, saleB]) await client.drained(saleId, 30_000);
    const acknowledged = answers.filter((a) => a.status === 202 || a.status === 200);
    assert.equal(new Set(acknowledged.map((a) => a.orderId)).size, acknowledged.length, 'no order id answered twice');
    for (const a of acknowledged) {
      const order = await app.node.db.getOrder(a.orderId!);
      assert.ok(order, `order ${a.orderId} answered ${a.status} to ${a.user} (sale ${a.saleId}) is in the database`);
      assert.equal(order.userId, a.user);
      assert.equal(order.saleId, a.saleId);
    }
    for (const saleId of [saleA, saleB]) {
      const stats = (await client.stats(saleId)).body;
      assert.equal(stats.pending, 0);
      assert.equal(stats.created + (stats.remaining ?? Number.NaN), STOCK, `sale ${saleId}: orders + remaining = stock (${JSON.stringify(stats)})`);
    }
    const refused = (saleId: number): number => answers.filter((a) => a.saleId === saleId && a.status === 503).length;
    const lastRefusedB = Math.max(killedAt, ...answers.filter((a) => a.saleId === saleB && a.status === 503).map((a) => a.at));
    process.stdout.write(
      `# cluster failover: replica promoted ${promotedAt - killedAt} ms after the kill; sale A refused ${refused(saleA)} purchases ` +
        `and sold again ${recoveredAt - rejoinedAt} ms after its old master's restart; sale B refused ${refused(saleB)} ` +
        `(the last ${lastRefusedB - killedAt} ms after the kill); slowest answer ${slowest} ms\n`,
    );
  });
});
