/**
 * With `durability: replica`, an order only the Redis primary holds (its purchase was
 * answered 503 because no replica confirmed it) must not reach the database either: were
 * the primary lost then, the promoted replica would sell that unit again and the full
 * database would refuse an order that was acknowledged (seen in the chaos suite).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis, waitUntilReplicaAcknowledges } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

describe('order writer with durability: replica', () => {
  let primary: RedisServer;
  let replica: RedisServer;
  let app: TestNode;
  before(async () => {
    primary = await startRedis();
    replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
    await waitUntilReplicaAcknowledges(primary.url);
    app = await startTestNode({
      databaseUrl: await freshDatabaseUrl('sqlite'),
      redisUrl: primary.url,
      rateLimitPerUser: 0,
      durability: 'replica',
      replicaTimeoutMs: 200,
      writerClaimIdleMs: 500,
    });
  });
  after(async () => {
    replica?.kill('SIGCONT');
    await app?.stop();
    await replica?.stop();
    await primary?.stop();
  });

  it('keeps an order no replica confirmed out of the database until a replica has it', async () => {
    const saleId = await app.client.createSale(10);
    assert.equal((await app.client.purchase(saleId, 'confirmed')).status, 202);
    await app.client.drained(saleId);

    replica.kill('SIGSTOP');
    try {
      const unconfirmed = await app.client.purchase(saleId, 'unconfirmed');
      assert.equal(unconfirmed.status, 503, `no replica can confirm it: ${JSON.stringify(unconfirmed.body)}`);
      await sleep(2000);
      const counts = await app.node.db.countOrders(saleId);
      assert.equal(counts.created, 1, 'the unconfirmed order is not in the database while only the primary has it');
    } finally {
      replica.kill('SIGCONT');
    }
    const retry = await app.client.purchase(saleId, 'unconfirmed');
    assert.ok([200, 503].includes(retry.status));
    await app.client.drained(saleId, 15_000);
    assert.equal((await app.node.db.countOrders(saleId)).created, 2, 'once a replica has it, the order is persisted');
  });
});
