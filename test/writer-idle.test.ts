/**
 * An idle order writer polls Redis a few times a second, not a hundred (the polling cost
 * a busy API process about 5 % of its CPU), and still persists the first order after a
 * quiet spell promptly.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

/** XREADGROUP calls Redis has served since its statistics were reset. */
async function queueReads(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  return Number(/^cmdstat_xreadgroup:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
}

describe('an idle order writer', () => {
  let server: RedisServer;
  let app: TestNode;
  let redis: Redis;
  before(async () => {
    server = await startRedis();
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), redisUrl: server.url, rateLimitPerUser: 0 });
    redis = new Redis(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await app?.stop();
    await server?.stop();
  });

  it('reads the queue at most about ten times a second while no order comes, and persists the next one promptly', async () => {
    const saleId = await app.client.createSale(10);
    await sleep(1000);
    await redis.config('RESETSTAT');
    await sleep(2000);
    const reads = await queueReads(redis);
    assert.ok(reads > 0, 'the writer still watches the queue');
    assert.ok(reads <= 30, `${reads} queue reads in 2 s of idling`);

    const started = performance.now();
    assert.equal((await app.client.purchase(saleId, 'after-a-quiet-spell')).status, 202);
    await app.client.drained(saleId);
    const took = performance.now() - started;
    assert.ok(took < 1000, `the first order after idling was persisted in ${Math.round(took)} ms`);
  });
});
