/**
 * Two writer processes rebuilding the same lost sale at once (every writer role runs the
 * reconciler): only the warm-up of the process that paused the sale last may land.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisStockStore, ReserveCode } from '../src/stock/index.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';

const warmup = (remaining: number, epoch: string) => ({ saleId: 7, stock: 10, remaining, epoch, buyers: [], released: [] });

describe('redis stock store: concurrent rebuilds of one sale', () => {
  let redis: RedisServer;
  let a: RedisStockStore;
  let b: RedisStockStore;
  before(async () => {
    redis = await startRedis();
    a = await RedisStockStore.connect(redis.url);
    b = await RedisStockStore.connect(redis.url);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it('refuses the warm-up of a process whose pause was overtaken, and keeps the later one', async () => {
    await a.warm(warmup(10, 'created'));
    // A counts first, B pauses after A counted and sells nothing meanwhile: A's counts are stale.
    await a.pause(7);
    await b.pause(7);
    await assert.rejects(a.warm(warmup(10, 'from-a')), /STALE_WARMUP/);
    assert.equal(await a.snapshot(7), null, 'still paused: the overtaken warm-up changed nothing');
    await b.warm(warmup(10, 'from-b'));
    assert.equal((await a.snapshot(7))?.epoch, 'from-b');
  });

  it('keeps what was sold after a finished rebuild: a late, stale warm-up cannot undo it', async () => {
    await a.warm(warmup(10, 'created-2'));
    await a.pause(7);
    // A and B both found the sale missing and both count it with nothing sold (remaining 10).
    await b.pause(7);
    await b.warm(warmup(10, 'from-b'));
    for (let i = 0; i < 3; i++) {
      const result = await b.reserve({ saleId: 7, userId: `u${i}`, orderId: `o${i}`, now: Date.now(), perUserLimit: 0 });
      assert.equal(result.code, ReserveCode.Reserved);
    }
    // Without the fence this would set remaining back to 10: three units sold twice.
    await assert.rejects(a.warm(warmup(10, 'from-a')), /STALE_WARMUP/);
    const snapshot = await a.snapshot(7);
    assert.deepEqual([snapshot?.epoch, snapshot?.remaining], ['from-b', 7]);
    // The next rebuild by A pauses afresh and lands.
    await a.pause(7);
    await a.warm(warmup(7, 'from-a-again'));
    assert.equal((await b.snapshot(7))?.epoch, 'from-a-again');
  });

  it('warms a new sale without an explicit pause', async () => {
    await b.warm({ saleId: 8, stock: 5, remaining: 5, epoch: 'new', buyers: [], released: [] });
    assert.equal((await a.snapshot(8))?.remaining, 5);
  });
});
