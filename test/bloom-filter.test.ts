import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BloomFilter } from '../src/orders/bloom-filter.js';

describe('BloomFilter', () => {
  it('never forgets an item, and mistakes about 1 % of the others at its capacity', () => {
    const filter = new BloomFilter(100_000);
    for (let i = 0; i < 100_000; i++) filter.add(`buyer-${i}`);
    for (let i = 0; i < 100_000; i++) assert.ok(filter.mightContain(`buyer-${i}`), `buyer-${i} was added`);
    let mistaken = 0;
    for (let i = 0; i < 100_000; i++) if (filter.mightContain(`stranger-${i}`)) mistaken++;
    assert.ok(mistaken < 2_000, `${mistaken} false positives in 100,000 (expected about 1,000)`);
  });

  it('knows nobody while empty', () => {
    const filter = new BloomFilter(0);
    assert.equal(filter.mightContain('anyone'), false);
    assert.equal(filter.mightContain(''), false);
  });
});
