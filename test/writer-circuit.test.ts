/**
 * The order writer's circuit breaker: while the database refuses every connection the
 * writer stops sending batches and only probes it, the API keeps selling, and persistence
 * resumes within about a probe interval of the database's return, with nothing lost.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';
import { startTcpFaultProxy } from './support/tcp-fault-proxy.js';
import type { TcpFaultProxy } from './support/tcp-fault-proxy.js';

describe('order writer while the database is unreachable', () => {
  let redis: RedisServer;
  let proxy: TcpFaultProxy;
  let app: TestNode;
  before(async () => {
    redis = await startRedis({ appendonly: true });
    const direct = new URL(await freshDatabaseUrl('mysql'));
    proxy = await startTcpFaultProxy(Number(direct.port));
    direct.port = String(proxy.port);
    app = await startTestNode({ databaseUrl: direct.href, redisUrl: redis.url, rateLimitPerUser: 0 });
  });
  after(async () => {
    proxy?.restore();
    await app?.stop();
    await proxy?.close();
    await redis?.stop();
  });

  const metric = async (name: string): Promise<number> => {
    const text = (await app.client.request('GET', '/metrics')).body as unknown as string;
    return Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  };

  it('holds batches back and probes while the database is cut off, then persists everything within a second of its return', async () => {
    const saleId = await app.client.createSale(100);
    assert.equal((await app.client.purchase(saleId, 'before')).status, 202);
    await app.client.drained(saleId);
    assert.equal(await metric('seckill_writer_circuit_open'), 0);

    proxy.cut();
    for (let i = 0; i < 20; i++) assert.equal((await app.client.purchase(saleId, `during-${i}`)).status, 202, 'purchases need only Redis');
    await sleep(2000);
    assert.equal(await metric('seckill_writer_circuit_open'), 1, 'the writer holds batches back');
    const errorsWhileOpen = await metric('seckill_writer_errors_total');
    await sleep(2000);
    assert.equal(await metric('seckill_writer_errors_total'), errorsWhileOpen, 'no batch is sent while the database does not answer a probe');
    const during = await app.client.stats(saleId);
    assert.equal(during.status, 503, `stats need the database: ${during.status} ${JSON.stringify(during.body)}`);

    proxy.restore();
    const back = performance.now();
    await app.client.drained(saleId, 10_000);
    const resumedMs = performance.now() - back;
    assert.ok(resumedMs < 1000, `every held order was persisted ${Math.round(resumedMs)} ms after the database came back`);
    const stats = await app.client.stats(saleId);
    assert.deepEqual([stats.body.created, stats.body.pending, stats.body.remaining], [21, 0, 79]);
    assert.equal(await metric('seckill_writer_circuit_open'), 0);
  });
});
