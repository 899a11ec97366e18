/**
 * Reads that may be a little stale (order status) go to a MariaDB replica while its lag is
 * within the limit, and to the primary when it lags or stops replicating (issue 5).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startReplicatedMariaDb, waitCaughtUp } from './support/mariadb-replication.js';
import type { ReplicatedMariaDb } from './support/mariadb-replication.js';

/** Probes run every 500 ms and stay valid for three intervals: after this a change is seen. */
const PROBE_SETTLE_MS = 2000;

describe('database replicas for stale-tolerant reads', { timeout: 180_000 }, () => {
  let cluster: ReplicatedMariaDb;
  let app: TestNode;
  let database: string;

  before(async () => {
    cluster = await startReplicatedMariaDb();
    const url = await cluster.createDatabase('seckill_reads');
    database = new URL(url).pathname.slice(1);
    app = await startTestNode({
      databaseUrl: `${cluster.servers[0].rootUrl}${database}`,
      databaseReplicaUrls: [`${cluster.servers[1].rootUrl}${database}`],
      databaseReplicaMaxLagMs: 1000,
      rateLimitPerUser: 0,
    });
  });
  after(async () => {
    await app?.stop();
    await cluster?.stop();
  });

  const [primary, replica] = [() => cluster.servers[0], () => cluster.servers[1]];
  const statusSeen = async (orderId: string, user: string): Promise<string | undefined> =>
    (await app.client.request('GET', `/api/orders/${orderId}`, { token: app.client.tokenFor(user) })).body.status as string | undefined;
  const metric = async (pattern: RegExp): Promise<number | undefined> => {
    const text = (await app.client.request('GET', '/metrics')).body as unknown as string;
    const match = pattern.exec(text);
    return match ? Number(match[1]) : undefined;
  };

  it('answers order status from the replica while it keeps up, and from the primary once it stops applying', async () => {
    const saleId = await app.client.createSale(10);
    const bought = await app.client.purchase(saleId, 'reader-1');
    assert.equal(bought.status, 202);
    const orderId = bought.body.orderId!;
    await app.client.drained(saleId);
    await waitCaughtUp(replica(), primary());
    assert.equal(await statusSeen(orderId, 'reader-1'), 'created');

    // Mark the order on the replica alone, so an answer shows which server gave it. The
    // primary never touches this row again, so replication does not trip over it.
    await replica().query(`UPDATE \`${database}\`.orders SET status = 'paid' WHERE id = ?`, [orderId]);
    assert.equal(await statusSeen(orderId, 'reader-1'), 'paid', 'the replica answered');
    assert.ok(((await metric(/^seckill_db_reads_total\{target="replica"\} (\d+)$/m)) ?? 0) >= 1);
    assert.equal(await metric(/^seckill_db_replica_lag_seconds\{replica="[^"]+"\} ([0-9.]+)$/m), 0);

    // Replication stops applying: its data may now be behind by anything.
    await replica().query('STOP SLAVE SQL_THREAD');
    await sleep(PROBE_SETTLE_MS);
    assert.equal(await statusSeen(orderId, 'reader-1'), 'created', 'the primary answered');
    assert.equal(await metric(/^seckill_db_replica_lag_seconds\{replica="[^"]+"\} ([0-9.]+)$/m), undefined, 'no lag is reported for a replica that does not apply');

    await replica().query('START SLAVE SQL_THREAD');
    await sleep(PROBE_SETTLE_MS);
    assert.equal(await statusSeen(orderId, 'reader-1'), 'paid', 'the replica serves again once it applies');
  });

  it('asks the primary for an order the replica does not have yet, so a new order is never "not found"', async () => {
    const saleId = await app.client.createSale(10);
    // The replica applies nothing from here on, but stays usable for a moment: its last
    // probe said lag 0, and the probe measures again only every 500 ms.
    await replica().query('STOP SLAVE SQL_THREAD');
    try {
      const bought = await app.client.purchase(saleId, 'reader-2');
      assert.equal(bought.status, 202);
      await app.client.drained(saleId);
      assert.equal(await statusSeen(bought.body.orderId!, 'reader-2'), 'created');
      assert.equal((await app.client.request('GET', `/api/orders/${bought.body.orderId}`, { token: app.client.tokenFor('someone-else') })).status, 404);
    } finally {
      await replica().query('START SLAVE SQL_THREAD');
    }
  });
});
