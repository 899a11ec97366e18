/**
 * The writer role's periodic repair of lost sale states must leave a sale that was just
 * created to the node that creates it: repairing it in between pauses it, and its first
 * buyers get 503 for a sale that never lost anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

describe('periodic repair and new sales', () => {
  let redis: RedisServer;
  let app: TestNode;
  before(async () => {
    redis = await startRedis();
    // A repair pass every 10 ms, so one is bound to fall between a sale's insert and its warm-up.
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), redisUrl: redis.url, rateLimitPerUser: 0, reconcileIntervalMs: 10 });
  });
  after(async () => {
    await app?.stop();
    await redis?.stop();
  });

  it('sells a sale the moment it is created, with no 503 from a repair racing its warm-up', async () => {
    const refused: string[] = [];
    for (let i = 0; i < 40; i++) {
      const saleId = await app.client.createSale(5);
      const answer = await app.client.purchase(saleId, `first-buyer-${i}`);
      if (answer.status !== 202) refused.push(`sale ${saleId}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    assert.deepEqual(refused, [], 'every first buyer of a new sale is served');
  });
});
