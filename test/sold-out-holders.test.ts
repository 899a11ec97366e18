import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { SoldOutHolders } from '../src/orders/sold-out-holders.js';
import { MemoryStockStore, ReserveCode } from '../src/stock/index.js';

async function untilKnown(holders: SoldOutHolders, saleId: number): Promise<void> {
  for (let i = 0; i < 1000 && !holders.knows(saleId); i++) await tick();
  assert.ok(holders.knows(saleId), `the buyers of sale ${saleId} were loaded`);
}

describe('SoldOutHolders', () => {
  it('learns a sold-out sale\'s buyers, again when they change, and forgets a sale no longer sold out', async () => {
    const store = new MemoryStockStore();
    await store.warm({ saleId: 1, stock: 2, remaining: 2, epoch: 'e', buyers: [], released: [] });
    await store.warm({ saleId: 2, stock: 1, remaining: 1, epoch: 'e', buyers: [], released: [] });
    const buy = (saleId: number, userId: string) => store.reserve({ saleId, userId, orderId: `${saleId}-${userId}`, now: Date.now(), perUserLimit: 0 });
    assert.equal((await buy(1, 'ann')).code, ReserveCode.Reserved);
    const holders = new SoldOutHolders(store);
    assert.equal(holders.mightHold(1, 'ann'), false, 'nobody is known before the first load');

    const t0 = 1_000_000;
    holders.refresh(1, t0);
    await untilKnown(holders, 1);
    assert.equal(holders.mightHold(1, 'ann'), true);
    assert.equal(holders.mightHold(1, 'bob'), false);

    assert.equal((await buy(1, 'bob')).code, ReserveCode.Reserved);
    holders.refresh(1, t0 + 500);
    await tick();
    assert.equal(holders.mightHold(1, 'bob'), false, 'checked at most once a second');
    holders.refresh(1, t0 + 1500);
    for (let i = 0; i < 100 && !holders.mightHold(1, 'bob'); i++) await tick();
    assert.equal(holders.mightHold(1, 'bob'), true, 'a new buyer is learnt once the count changed');

    holders.refresh(2, t0 + 11 * 60_000);
    assert.equal(holders.knows(1), false, 'sale 1, not flagged for 10 minutes, is forgotten');
  });
});
