import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { openDatabase, openDatabaseBackend } from '../src/db/open-database.js';
import type { AcceptedOrder, SeckillDatabase } from '../src/db/seckill-database.js';
import { SeckillMetrics } from '../src/ops/metrics.js';
import { OrderWriter } from '../src/orders/order-writer.js';
import type { OrderWriterOptions } from '../src/orders/order-writer.js';
import { SaleCatalog } from '../src/orders/sale-catalog.js';
import { MemoryStockStore, ReserveCode } from '../src/stock/index.js';
import { freshDatabaseUrl } from './support/servers.js';

const DIALECTS = ['sqlite', 'mysql', 'postgres'] as const;
type Dialect = (typeof DIALECTS)[number];

const T0 = 1_800_000_000_000;
const WINDOW_SECONDS = 60;
const WINDOW_MS = WINDOW_SECONDS * 1000;

/** A migrated database on a new, empty URL; closed when `work` ends. */
async function withDatabase<T>(dialect: Dialect, work: (db: SeckillDatabase, url: string) => Promise<T>): Promise<T> {
  const url = await freshDatabaseUrl(dialect);
  const db = await openDatabase(url, { poolSize: 8 });
  try {
    const outcome = await db.migrate();
    assert.equal(outcome.error, undefined, `migration failed: ${outcome.error?.stack}`);
    return await work(db, url);
  } finally {
    await db.close();
  }
}

async function createSale(db: SeckillDatabase, stock: number, name = 'lamp'): Promise<number> {
  const sale = await db.createSale({
    name,
    stock,
    startsAt: T0,
    endsAt: T0 + 3_600_000,
    paymentWindowSeconds: WINDOW_SECONDS,
    now: T0 - 1000,
  });
  return sale.id;
}

/** `count` orders of distinct users, accepted one millisecond apart from `T0`. */
function acceptedOrders(prefix: string, count: number, from = 0): AcceptedOrder[] {
  return Array.from({ length: count }, (_, i) => ({
    orderId: `${prefix}-o${from + i}`,
    userId: `${prefix}-u${from + i}`,
    createdAt: T0 + from + i,
  }));
}

async function liveOrders(db: SeckillDatabase, saleId: number): Promise<number> {
  const counts = await db.countOrders(saleId);
  return counts.created + counts.paid;
}

async function sold(db: SeckillDatabase, saleId: number): Promise<number> {
  const sale = await db.getSale(saleId);
  assert.ok(sale, `sale ${saleId} exists`);
  return sale.sold;
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: database`, () => {
    it('migrates an empty database once and then has nothing left to apply', async () => {
      await withDatabase(dialect, async (db, url) => {
        assert.equal(db.dialect, dialect);
        const again = await openDatabase(url);
        try {
          assert.deepEqual(await again.migrate(), { applied: [] });
          assert.equal(await again.ping(), true);
        } finally {
          await again.close();
        }
      });
    });

    it('creates sales and lists them newest first', async () => {
      await withDatabase(dialect, async (db) => {
        const first = await createSale(db, 5, 'kettle');
        const second = await createSale(db, 7, 'toaster');
        assert.deepEqual(await db.getSale(second), {
          id: second,
          name: 'toaster',
          stock: 7,
          sold: 0,
          startsAt: T0,
          endsAt: T0 + 3_600_000,
          paymentWindowSeconds: WINDOW_SECONDS,
          createdAt: T0 - 1000,
        });
        assert.deepEqual(
          (await db.listSales()).map((sale) => sale.id),
          [second, first],
        );
        assert.equal(await db.getSale(second + 1000), undefined);
      });
    });

    it('persists a batch as created orders that hold their units until the payment window ends', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 10);
        const orders = acceptedOrders('a', 4);
        const result = await db.persistOrders(saleId, orders, WINDOW_SECONDS);
        assert.deepEqual(result, { inserted: orders.map((o) => o.orderId), replayed: [], rejected: [] });
        assert.equal(await sold(db, saleId), 4);
        assert.deepEqual(await db.getOrder('a-o2'), {
          id: 'a-o2',
          saleId,
          userId: 'a-u2',
          status: 'created',
          createdAt: T0 + 2,
          expiresAt: T0 + 2 + WINDOW_MS,
          paidAt: null,
          cancelledAt: null,
          reason: null,
        });
        assert.equal(await db.getOrder('nobody'), undefined);
      });
    });

    it('treats a replayed batch as a no-op', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 10);
        const orders = acceptedOrders('r', 5);
        await db.persistOrders(saleId, orders.slice(0, 3), WINDOW_SECONDS);
        const replay = await db.persistOrders(saleId, orders, WINDOW_SECONDS);
        assert.deepEqual(replay.inserted, ['r-o3', 'r-o4']);
        assert.deepEqual([...replay.replayed].sort(), ['r-o0', 'r-o1', 'r-o2']);
        assert.deepEqual(replay.rejected, []);
        const again = await db.persistOrders(saleId, orders, WINDOW_SECONDS);
        assert.deepEqual(again.inserted, []);
        assert.equal(again.replayed.length, 5);
        assert.equal(await sold(db, saleId), 5);
        assert.equal(await liveOrders(db, saleId), 5);
      });
    });

    it('records a second order of the same user as a duplicate_user rejection', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 10);
        await db.persistOrders(saleId, [{ orderId: 'first', userId: 'alice', createdAt: T0 }], WINDOW_SECONDS);
        const result = await db.persistOrders(
          saleId,
          [
            { orderId: 'second', userId: 'alice', createdAt: T0 + 5 },
            { orderId: 'bob-1', userId: 'bob', createdAt: T0 + 6 },
            { orderId: 'bob-2', userId: 'bob', createdAt: T0 + 7 },
          ],
          WINDOW_SECONDS,
        );
        assert.deepEqual(result.inserted, ['bob-1']);
        assert.deepEqual(
          [...result.rejected].sort((a, b) => a.orderId.localeCompare(b.orderId)),
          [
            { orderId: 'bob-2', userId: 'bob', reason: 'duplicate_user' },
            { orderId: 'second', userId: 'alice', reason: 'duplicate_user' },
          ],
        );
        assert.equal(await sold(db, saleId), 2, 'a rejected order holds no unit');
        const second = await db.getOrder('second');
        assert.equal(second?.status, 'cancelled');
        assert.equal(second?.reason, 'duplicate_user');
        assert.equal((await db.getOrder('first'))?.status, 'created', 'the order the user holds is untouched');
        const unreleased = (await db.unreleasedOrders(100)).map((o) => o.orderId).sort();
        assert.deepEqual(unreleased, ['bob-2', 'second'], 'the units the stock store reserved for them go back');
        const again = [{ orderId: 'second', userId: 'alice', createdAt: T0 + 5 }];
        const replay = await db.persistOrders(saleId, again, WINDOW_SECONDS);
        assert.deepEqual(replay, { inserted: [], replayed: ['second'], rejected: [] });
      });
    });

    it('keeps user ids that differ only in case or a trailing space apart', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 10);
        const users = ['Bob', 'bob', 'bob '];
        const result = await db.persistOrders(
          saleId,
          users.map((userId, i) => ({ orderId: `case-${i}`, userId, createdAt: T0 + i })),
          WINDOW_SECONDS,
        );
        assert.equal(result.inserted.length, 3);
        const buyers = new Map<string, string>();
        for await (const batch of db.saleBuyers(saleId)) for (const [user, order] of batch) buyers.set(user, order);
        assert.deepEqual(buyers, new Map([['Bob', 'case-0'], ['bob', 'case-1'], ['bob ', 'case-2']]));
      });
    });

    it('sells the last units to the earliest orders and records the rest as sold_out', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 3);
        const orders = acceptedOrders('s', 5).reverse();
        const result = await db.persistOrders(saleId, orders, WINDOW_SECONDS);
        assert.deepEqual([...result.inserted].sort(), ['s-o0', 's-o1', 's-o2']);
        assert.deepEqual(
          [...result.rejected].sort((a, b) => a.orderId.localeCompare(b.orderId)),
          [
            { orderId: 's-o3', userId: 's-u3', reason: 'sold_out' },
            { orderId: 's-o4', userId: 's-u4', reason: 'sold_out' },
          ],
        );
        assert.equal(await sold(db, saleId), 3);
        assert.equal((await db.getOrder('s-o4'))?.reason, 'sold_out');
        assert.deepEqual(await db.unreleasedOrders(100), [], 'a sold_out order never held a unit to give back');
      });
    });

    it('never lets sold exceed stock when batches race', async () => {
      await withDatabase(dialect, async (db, url) => {
        const stock = 50;
        const saleId = await createSale(db, stock);
        const other = await openDatabase(url, { poolSize: 8 });
        try {
          const batches = Array.from({ length: 8 }, (_, b) => acceptedOrders('race', 20, b * 20));
          // Batch 0 twice, as two writers do when one claims the entry of a writer thought dead.
          const work = [...batches, batches[0]].map((batch, i) =>
            (i % 2 === 0 ? db : other).persistOrders(saleId, batch, WINDOW_SECONDS),
          );
          const results = await Promise.all(work);
          const inserted = results.flatMap((r) => r.inserted);
          const rejected = results.flatMap((r) => r.rejected);
          assert.equal(inserted.length, stock, 'exactly the stock was sold');
          assert.equal(new Set(inserted).size, stock, 'no order was inserted twice');
          assert.equal(rejected.length, 160 - stock);
          assert.ok(rejected.every((r) => r.reason === 'sold_out'));
          assert.equal(await sold(db, saleId), stock);
          assert.equal(await liveOrders(db, saleId), stock);
          const counts = await db.countOrders(saleId);
          assert.equal(counts.cancelled, 160 - stock, 'every refused order is recorded once');
        } finally {
          await other.close();
        }
      });
    });

    it('counts a batch once when two writers persist it at the same time', async () => {
      await withDatabase(dialect, async (db, url) => {
        const saleId = await createSale(db, 1000);
        const other = await openDatabase(url);
        try {
          const batch = acceptedOrders('twice', 300);
          const [a, b] = await Promise.all([
            db.persistOrders(saleId, batch, WINDOW_SECONDS),
            other.persistOrders(saleId, batch, WINDOW_SECONDS),
          ]);
          assert.equal(a.inserted.length + b.inserted.length, 300);
          assert.equal(a.replayed.length + b.replayed.length, 300);
          assert.equal(await sold(db, saleId), 300);
          assert.equal(await liveOrders(db, saleId), 300);
        } finally {
          await other.close();
        }
      });
    });

    it('does not bring a sold_out order back to life when its batch is replayed after a unit was freed', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 1);
        const batch = acceptedOrders('late', 2);
        await db.persistOrders(saleId, batch, WINDOW_SECONDS);
        assert.equal(await db.cancelOrder('late-o0', T0 + 10), 'cancelled');
        // Alone it fits in the freed unit, so only the record of its refusal can stop it.
        const alone = await db.persistOrders(saleId, [batch[1]], WINDOW_SECONDS);
        assert.deepEqual(alone, { inserted: [], replayed: ['late-o1'], rejected: [] });
        const replay = await db.persistOrders(saleId, batch, WINDOW_SECONDS);
        assert.deepEqual(replay, { inserted: [], replayed: ['late-o0', 'late-o1'], rejected: [] });
        assert.equal((await db.getOrder('late-o1'))?.status, 'cancelled');
        assert.equal(await sold(db, saleId), 0);
      });
    });

    it('writes batches larger than one statement may carry', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 12_000);
        const result = await db.persistOrders(saleId, acceptedOrders('big', 12_000), WINDOW_SECONDS);
        assert.equal(result.inserted.length, 12_000);
        assert.equal(await sold(db, saleId), 12_000);
        let buyers = 0;
        for await (const batch of db.saleBuyers(saleId)) buyers += batch.length;
        assert.equal(buyers, 12_000);
      });
    });

    it('refuses orders of a sale that does not exist and writes nothing', async () => {
      await withDatabase(dialect, async (db) => {
        await assert.rejects(
          db.persistOrders(4242, acceptedOrders('ghost', 2), WINDOW_SECONDS),
          /sale 4242 does not exist/,
        );
        assert.equal(await db.getOrder('ghost-o0'), undefined);
      });
    });

    it('pays once and records exactly one payment', async () => {
      await withDatabase(dialect, async (db, url) => {
        const saleId = await createSale(db, 5);
        await db.persistOrders(saleId, acceptedOrders('p', 1), WINDOW_SECONDS);
        const outcomes = await Promise.all([db.payOrder('p-o0', T0 + 1000), db.payOrder('p-o0', T0 + 1001)]);
        assert.deepEqual([...outcomes].sort(), ['already_paid', 'paid']);
        const order = await db.getOrder('p-o0');
        assert.equal(order?.status, 'paid');
        assert.ok(order?.paidAt === T0 + 1000 || order?.paidAt === T0 + 1001);
        assert.equal(await sold(db, saleId), 1, 'a paid order keeps its unit');
        assert.equal(await db.cancelOrder('p-o0', T0 + 2000), 'paid');
        assert.equal(await db.payOrder('missing', T0), 'not_found');
        const backend = openDatabaseBackend(url);
        try {
          const payments = await backend.db.selectFrom('payments').select(['order_id', 'paid_at']).execute();
          assert.deepEqual(payments, [{ order_id: 'p-o0', paid_at: order?.paidAt }]);
        } finally {
          await backend.close();
        }
      });
    });

    it('answers expired when paying after the window, and frees the unit once', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 5);
        await db.persistOrders(saleId, acceptedOrders('x', 2), WINDOW_SECONDS);
        const late = T0 + WINDOW_MS + 1;
        assert.equal(await db.payOrder('x-o0', late), 'expired');
        assert.equal(await db.payOrder('x-o0', late + 1), 'expired');
        assert.equal((await db.getOrder('x-o0'))?.status, 'expired');
        assert.equal(await sold(db, saleId), 1);
        assert.equal(await db.expireDue(late, 100), 1, 'only the other order was left to expire');
        assert.equal(await sold(db, saleId), 0);
      });
    });

    it('expires an unpaid order past its window and frees its unit exactly once even when two expirers race', async () => {
      await withDatabase(dialect, async (db, url) => {
        const saleA = await createSale(db, 500);
        const saleB = await createSale(db, 500);
        await db.persistOrders(saleA, acceptedOrders('ea', 300), WINDOW_SECONDS);
        await db.persistOrders(saleB, acceptedOrders('eb', 200), WINDOW_SECONDS);
        assert.equal(await db.payOrder('ea-o0', T0 + 5), 'paid');
        assert.equal(await db.expireDue(T0 + WINDOW_MS - 1, 1000), 0, 'nothing is due before its window ends');
        const other = await openDatabase(url);
        try {
          const now = T0 + WINDOW_MS + 10_000;
          const expirers = [db, other, db, other].map(async (handle) => {
            let total = 0;
            for (let n = await handle.expireDue(now, 150); n > 0; n = await handle.expireDue(now, 150)) total += n;
            return total;
          });
          const totals = await Promise.all(expirers);
          // An expirer stops at a round that found others had taken its picks; sweep up after.
          totals.push(await db.expireDue(now, 1000));
          assert.equal(totals.reduce((a, b) => a + b, 0), 499, 'every unpaid order expired once');
          assert.equal(await sold(db, saleA), 1, 'only the paid order holds a unit');
          assert.equal(await sold(db, saleB), 0);
          assert.deepEqual(await db.countOrders(saleA), { created: 0, paid: 1, expired: 299, cancelled: 0 });
        } finally {
          await other.close();
        }
      });
    });

    it('cancels once and frees the unit', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 5);
        await db.persistOrders(saleId, acceptedOrders('c', 2), WINDOW_SECONDS);
        const outcomes = await Promise.all([db.cancelOrder('c-o0', T0 + 100), db.cancelOrder('c-o0', T0 + 101)]);
        assert.deepEqual([...outcomes].sort(), ['already_cancelled', 'cancelled']);
        assert.equal(await sold(db, saleId), 1);
        const order = await db.getOrder('c-o0');
        assert.equal(order?.status, 'cancelled');
        assert.ok(order?.cancelledAt === T0 + 100 || order?.cancelledAt === T0 + 101);
        assert.equal(await db.payOrder('c-o0', T0 + 200), 'cancelled');
        assert.equal(await db.expireDue(T0 + WINDOW_MS + 5, 10), 1);
        assert.equal(await db.cancelOrder('c-o1', T0 + WINDOW_MS + 6), 'expired');
        assert.equal(await db.cancelOrder('missing', T0), 'not_found');
        assert.equal(await sold(db, saleId), 0);
      });
    });

    it('lists ended orders until they are marked released', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 3);
        await db.persistOrders(saleId, acceptedOrders('l', 4), WINDOW_SECONDS); // l-o3 is sold_out
        await db.persistOrders(saleId, [{ orderId: 'l-dup', userId: 'l-u0', createdAt: T0 + 9 }], WINDOW_SECONDS);
        await db.cancelOrder('l-o0', T0 + 100);
        await db.expireDue(T0 + WINDOW_MS + 1, 1); // expires l-o1, the earliest due
        const unreleased = await db.unreleasedOrders(100);
        assert.deepEqual(
          unreleased.map((o) => o.orderId).sort(),
          ['l-dup', 'l-o0', 'l-o1'],
        );
        assert.ok(unreleased.every((o) => o.saleId === saleId));
        assert.equal((await db.unreleasedOrders(2)).length, 2);
        await db.markReleased(['l-o0', 'l-dup', 'l-o2' /* live: not ended, stays unmarked */], T0 + 200);
        assert.deepEqual(
          (await db.unreleasedOrders(100)).map((o) => o.orderId),
          ['l-o1'],
        );
        await db.markReleased(['l-o1'], T0 + 300);
        assert.deepEqual(await db.unreleasedOrders(100), []);
      });
    });

    it('settles a sale by listing all its ended orders and marking them released', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 3);
        const otherSale = await createSale(db, 3);
        await db.persistOrders(saleId, acceptedOrders('st', 4), WINDOW_SECONDS); // st-o3 sold_out
        await db.persistOrders(otherSale, acceptedOrders('ot', 1), WINDOW_SECONDS);
        await db.cancelOrder('st-o0', T0 + 10);
        await db.cancelOrder('ot-o0', T0 + 10);
        await db.markReleased(['st-o0'], T0 + 20);
        await db.cancelOrder('st-o1', T0 + 30);
        const ended = await db.settleEndedOrders(saleId, T0 + 40);
        assert.deepEqual([...ended].sort(), ['st-o0', 'st-o1', 'st-o3']);
        assert.deepEqual(
          (await db.unreleasedOrders(100)).map((o) => o.orderId),
          ['ot-o0'],
          'the other sale is not touched',
        );
      });
    });

    it('gives every buyer of a sale with the order they hold, page by page', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 3000);
        const otherSale = await createSale(db, 10);
        await db.persistOrders(saleId, acceptedOrders('b', 2500), WINDOW_SECONDS);
        await db.persistOrders(otherSale, acceptedOrders('z', 3), WINDOW_SECONDS);
        await db.cancelOrder('b-o7', T0 + 1);
        const pages: number[] = [];
        const buyers = new Map<string, string>();
        for await (const page of db.saleBuyers(saleId)) {
          pages.push(page.length);
          for (const [user, order] of page) buyers.set(user, order);
        }
        assert.ok(pages.length > 1, 'large sales come in several pages');
        assert.equal(buyers.size, 2500);
        assert.equal(buyers.get('b-u7'), 'b-o7', 'a cancelled order still names its buyer');
        assert.equal(buyers.get('b-u1234'), 'b-o1234');
        assert.equal(buyers.has('z-u0'), false);
      });
    });

    it('counts orders by status and tells which order ids are recorded', async () => {
      await withDatabase(dialect, async (db) => {
        const saleId = await createSale(db, 4);
        await db.persistOrders(saleId, acceptedOrders('k', 5), WINDOW_SECONDS); // k-o4 sold_out
        await db.payOrder('k-o0', T0 + 10);
        await db.cancelOrder('k-o1', T0 + 10);
        await db.expireDue(T0 + WINDOW_MS + 10, 10); // k-o2 and k-o3 were never paid
        const counts = await db.countOrders(saleId);
        assert.deepEqual(counts, { created: 0, paid: 1, expired: 2, cancelled: 2 });
        const existing = await db.existingOrderIds(saleId, ['k-o0', 'k-o4', 'k-o9', 'nope']);
        assert.deepEqual([...existing].sort(), ['k-o0', 'k-o4']);
      });
    });
  });
}

/**
 * Persists `batches` from a separate Node process and returns how many orders it inserted,
 * so two SQLite connections really contend for the file's write lock.
 */
async function persistFromChildProcess(url: string, saleId: number, batches: AcceptedOrder[][]): Promise<number> {
  const script = `
    const { openDatabase } = await import(process.env.SECKILL_DB_MODULE);
    const db = await openDatabase(process.env.SECKILL_DB_URL);
    let inserted = 0;
    for (const batch of JSON.parse(process.env.SECKILL_DB_BATCHES)) {
      const result = await db.persistOrders(Number(process.env.SECKILL_DB_SALE), batch, ${WINDOW_SECONDS});
      inserted += result.inserted.length;
    }
    await db.close();
    process.stdout.write(String(inserted));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    env: {
      ...process.env,
      SECKILL_DB_MODULE: new URL('../src/db/open-database.js', import.meta.url).href,
      SECKILL_DB_URL: url,
      SECKILL_DB_SALE: String(saleId),
      SECKILL_DB_BATCHES: JSON.stringify(batches),
    },
  });
  return Number(stdout);
}

describe('sqlite: several processes on one file', () => {
  it('never lets sold exceed stock when processes write the same sale at once', async () => {
    await withDatabase('sqlite', async (db, url) => {
      const saleId = await createSale(db, 50);
      const batches = Array.from({ length: 6 }, (_, b) => acceptedOrders('proc', 20, b * 20));
      // Both processes get batch 0, as after a writer claimed the entry of one thought dead.
      const inserted = await Promise.all([
        persistFromChildProcess(url, saleId, [batches[0], batches[1], batches[2], batches[3]]),
        persistFromChildProcess(url, saleId, [batches[0], batches[4], batches[5]]),
      ]);
      assert.equal(inserted[0] + inserted[1], 50);
      assert.equal(await sold(db, saleId), 50);
      assert.equal(await liveOrders(db, saleId), 50);
      assert.equal((await db.countOrders(saleId)).cancelled, 120 - 50);
    });
  });
});

describe('database URLs', () => {
  it('refuses an unknown scheme and names the setting and the schemes it takes', async () => {
    await assert.rejects(openDatabase('mongodb://127.0.0.1/seckill'), (error: Error) => {
      assert.match(error.message, /SECKILL_DATABASE_URL/);
      assert.match(error.message, /mongodb:\/\/127\.0\.0\.1\/seckill/);
      assert.match(error.message, /sqlite:.*mysql:\/\/.*mariadb:\/\/.*postgres:\/\/.*postgresql:\/\//);
      return true;
    });
  });

  it('creates the folders of a new SQLite file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'seckill-db-test-'));
    try {
      const file = join(root, 'deep', 'er', 'seckill.db');
      const db = await openDatabase(`sqlite:${file}`);
      try {
        assert.equal((await db.migrate()).error, undefined);
        assert.ok(existsSync(file));
      } finally {
        await db.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps an in-memory SQLite database for as long as it is open', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      assert.equal((await db.migrate()).error, undefined);
      const sale = await db.createSale({
        name: 'mem',
        stock: 1,
        startsAt: T0,
        endsAt: T0 + 1,
        paymentWindowSeconds: 1,
        now: T0,
      });
      assert.equal((await db.getSale(sale.id))?.name, 'mem');
    } finally {
      await db.close();
    }
  });

  for (const url of ['mysql://root@127.0.0.1:1/seckill', 'postgres://postgres@127.0.0.1:1/seckill']) {
    it(`reports an unreachable ${url.split(':')[0]} server by a failed ping and thrown errors`, async () => {
      const db = await openDatabase(url);
      try {
        assert.equal(await db.ping(), false);
        await assert.rejects(db.persistOrders(1, acceptedOrders('down', 1), WINDOW_SECONDS));
        const outcome = await db.migrate();
        assert.deepEqual(outcome.applied, []);
        assert.ok(outcome.error instanceof Error);
      } finally {
        await db.close();
      }
    });
  }
});

/**
 * The order writer between the stock store's queue and the database (SQLite and the memory
 * store here: the loop is the same whatever the backends).
 */
describe('order writer', () => {
  /** A database whose persistOrders can be made to fail, for all orders or for some. */
  function flaky(db: SeckillDatabase, fails: (orders: readonly AcceptedOrder[]) => boolean): SeckillDatabase & { calls: number } {
    const state = { calls: 0 };
    return new Proxy(db, {
      get(target, prop) {
        if (prop === 'calls') return state.calls;
        if (prop === 'persistOrders') {
          return async (saleId: number, orders: readonly AcceptedOrder[], windowSeconds: number) => {
            state.calls += 1;
            if (fails(orders)) throw new Error('connect ECONNREFUSED (the database is down)');
            return target.persistOrders(saleId, orders, windowSeconds);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as SeckillDatabase & { calls: number };
  }

  /** A migrated SQLite database and a memory store with one sale of `stock` warmed in both. */
  async function withSale<T>(stock: number, work: (db: SeckillDatabase, store: MemoryStockStore, saleId: number) => Promise<T>): Promise<T> {
    return withDatabase('sqlite', async (db) => {
      const saleId = await createSale(db, stock);
      const store = new MemoryStockStore();
      try {
        await store.warm({ saleId, stock, remaining: stock, epoch: 'e1', buyers: [], released: [] });
        return await work(db, store, saleId);
      } finally {
        await store.close();
      }
    });
  }

  async function enqueue(store: MemoryStockStore, saleId: number, count: number, prefix = 'w'): Promise<AcceptedOrder[]> {
    const orders = acceptedOrders(prefix, count);
    for (const order of orders) {
      const result = await store.reserve({ saleId, userId: order.userId, orderId: order.orderId, now: order.createdAt, perUserLimit: 0 });
      assert.equal(result.code, ReserveCode.Reserved);
    }
    return orders;
  }

  function writerOf(db: SeckillDatabase, store: MemoryStockStore, options: Partial<OrderWriterOptions> = {}): OrderWriter {
    return new OrderWriter(db, store, new SaleCatalog(db), new SeckillMetrics(), pino({ level: 'silent' }), {
      consumer: 'writer-1',
      batchSize: 1000,
      claimIdleMs: 60_000,
      idleMs: 5,
      ...options,
    });
  }

  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  it('drains several full batches, reading ahead, with every order written once, replays included', async () => {
    await withSale(10_000, async (db, store, saleId) => {
      const orders = await enqueue(store, saleId, 3500);
      // Committed before a crash that came before the acknowledgement: replays of these change nothing.
      await db.persistOrders(saleId, orders.slice(0, 300), WINDOW_SECONDS);
      const writer = writerOf(db, store);
      writer.start();
      try {
        await until('the queue is empty', async () => (await store.snapshot(saleId))?.pending === 0);
      } finally {
        await writer.stop();
      }
      assert.equal(await sold(db, saleId), 3500);
      assert.deepEqual(await db.countOrders(saleId), { created: 3500, paid: 0, expired: 0, cancelled: 0 });
    });
  });

  it('finishes what it has read before it stops, leaving nothing handed out and unwritten', async () => {
    await withSale(10_000, async (db, store, saleId) => {
      await enqueue(store, saleId, 5000);
      const slow = flaky(db, () => false);
      const writer = writerOf(slow, store);
      writer.start();
      await until('a first batch was written', async () => slow.calls >= 1);
      await writer.stop();

      const queued = await store.queuedOrders(saleId);
      assert.ok(queued.every((order) => order.deliveries === 0), 'every entry is written and acknowledged, or never read');
      assert.equal((await db.countOrders(saleId)).created + queued.length, 5000, 'nothing lost, nothing doubled');
      assert.equal(await sold(db, saleId), 5000 - queued.length);
    });
  });

  it('pauses while the database is down, holding at most two batches, and writes everything once it is back', async () => {
    await withSale(10_000, async (db, store, saleId) => {
      await enqueue(store, saleId, 2500);
      let down = true;
      const sometimes = flaky(db, () => down);
      const writer = writerOf(sometimes, store);
      writer.start();
      try {
        await until('the writer retried', async () => sometimes.calls >= 3);
        const queued = await store.queuedOrders(saleId);
        assert.equal(queued.length, 2500, 'nothing is acknowledged while the database is down');
        const handedOut = queued.filter((order) => order.deliveries > 0).length;
        assert.ok(handedOut <= 2000, `${handedOut} entries taken while the database is down`);
        assert.equal((await db.countOrders(saleId)).created, 0);

        down = false;
        await until('the queue is empty', async () => (await store.snapshot(saleId))?.pending === 0);
      } finally {
        await writer.stop();
      }
      assert.equal(await sold(db, saleId), 2500);
      assert.equal((await db.countOrders(saleId)).created, 2500);
    });
  });

  it('dead-letters an often-delivered entry that keeps failing while the database answers, and writes the rest', async () => {
    await withSale(100, async (db, store, saleId) => {
      await enqueue(store, saleId, 5);
      // Delivered to writers that died three times over.
      for (let i = 0; i < 3; i++) {
        await sleep(5);
        assert.equal((await store.readOrders('dead-writer', [saleId], 10, 1)).length, 5);
      }
      const poisonId = 'w-o2';
      const writer = writerOf(flaky(db, (orders) => orders.some((order) => order.orderId === poisonId)), store, { claimIdleMs: 1, maxDeliveries: 3 });
      writer.start();
      try {
        await until('the queue is empty', async () => (await store.snapshot(saleId))?.pending === 0);
      } finally {
        await writer.stop();
      }
      assert.equal(await store.awaitDurable(saleId, poisonId), false, 'the poison entry was dead-lettered');
      assert.equal(await db.getOrder(poisonId), undefined);
      assert.equal((await db.countOrders(saleId)).created, 4);
      assert.equal(await sold(db, saleId), 4);
    });
  });
});
