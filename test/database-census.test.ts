import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  checkInvariants,
  countRows,
  engineIntegrity,
  isEmptyDatabase,
  snapshotSales,
} from '../src/backup/database-census.js';
import type { InvariantReport } from '../src/backup/database-census.js';
import { openDatabase, openDatabaseBackend } from '../src/db/open-database.js';
import type { DatabaseBackend } from '../src/db/dialects/database-backend.js';
import { freshDatabaseUrl } from './support/servers.js';

const DIALECTS = ['sqlite', 'mysql', 'postgres'] as const;
type Dialect = (typeof DIALECTS)[number];

const T0 = Date.now();
const WINDOW_SECONDS = 600;

/**
 * A known shop: sale A (stock 5) got 7 orders, 5 accepted and 2 refused as sold out, then
 * 2 paid and 1 cancelled; sale B (stock 3) got 2 orders.
 */
async function knownShop(url: string): Promise<{ saleA: number; saleB: number; paid: string[]; created: string[] }> {
  const db = await openDatabase(url);
  try {
    const migration = await db.migrate();
    assert.equal(migration.error, undefined);
    const sale = (name: string, stock: number) =>
      db.createSale({ name, stock, startsAt: T0, endsAt: T0 + 3_600_000, paymentWindowSeconds: WINDOW_SECONDS, now: T0 });
    const a = await sale('lamp', 5);
    const b = await sale('kettle', 3);
    const orders = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, i) => ({ orderId: `${prefix}-o${i}`, userId: `${prefix}-u${i}`, createdAt: T0 + i }));
    const resultA = await db.persistOrders(a.id, orders('a', 7), WINDOW_SECONDS);
    assert.equal(resultA.inserted.length, 5);
    await db.persistOrders(b.id, orders('b', 2), WINDOW_SECONDS);
    const [first, second, third, ...rest] = resultA.inserted;
    assert.equal(await db.payOrder(first as string, T0 + 10), 'paid');
    assert.equal(await db.payOrder(second as string, T0 + 10), 'paid');
    assert.equal(await db.cancelOrder(third as string, T0 + 10), 'cancelled');
    return { saleA: a.id, saleB: b.id, paid: [first as string, second as string], created: rest };
  } finally {
    await db.close();
  }
}

/** Runs raw SQL on one connection, for breaking invariants on purpose. */
async function onOneConnection(url: string, work: (run: (statement: string) => Promise<void>, dialect: Dialect) => Promise<void>): Promise<void> {
  const backend: DatabaseBackend = openDatabaseBackend(url, { poolSize: 1 });
  try {
    await backend.db.connection().execute(async (connection) => {
      await work(async (statement) => {
        await sql.raw(statement).execute(connection);
      }, backend.dialect);
    });
  } finally {
    await backend.close();
  }
}

function failed(report: InvariantReport): Record<string, string> {
  return Object.fromEntries(report.checks.filter((check) => !check.ok).map((check) => [check.name, check.detail]));
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: database census`, () => {
    it('counts the rows of every application table and snapshots each sale', async () => {
      const url = await freshDatabaseUrl(dialect);
      const { saleA, saleB } = await knownShop(url);
      assert.deepEqual(await countRows(url), { sales: 2, orders: 7, payments: 2, rejected_orders: 2 });
      assert.deepEqual(await snapshotSales(url), [
        { saleId: saleA, stock: 5, sold: 4, liveOrders: 4 },
        { saleId: saleB, stock: 3, sold: 2, liveOrders: 2 },
      ]);
    });

    it('calls a new database empty and a migrated one not', async () => {
      const url = await freshDatabaseUrl(dialect);
      assert.equal(await isEmptyDatabase(url), true);
      if (dialect === 'sqlite') {
        assert.equal(existsSync(url.slice('sqlite:'.length)), false, 'asking does not create the file');
        writeFileSync(url.slice('sqlite:'.length), '');
        assert.equal(await isEmptyDatabase(url), true, 'a zero-length file is empty');
      }
      const db = await openDatabase(url);
      try {
        await db.migrate();
      } finally {
        await db.close();
      }
      assert.equal(await isEmptyDatabase(url), false);
    });

    it('finds every invariant holding on a healthy database, and the engine\'s own check passing', async () => {
      const url = await freshDatabaseUrl(dialect);
      await knownShop(url);
      const report = await checkInvariants(url);
      assert.deepEqual(failed(report), {});
      assert.equal(report.ok, true);
      assert.equal(report.checks.length, 6);
      const integrity = await engineIntegrity(url);
      assert.equal(integrity.ok, true, integrity.detail);
      assert.equal(integrity.tool, { sqlite: 'PRAGMA integrity_check', mysql: 'CHECK TABLE', postgres: 'pg_amcheck' }[dialect]);
    });

    it('names the oversold sale when live orders exceed stock', async () => {
      const url = await freshDatabaseUrl(dialect);
      const { saleB } = await knownShop(url);
      await onOneConnection(url, async (run) => {
        await run(`insert into orders (id, sale_id, user_id, status, created_at, expires_at) values
          ('extra-1', ${saleB}, 'extra-u1', 'created', ${T0}, ${T0 + 600_000}),
          ('extra-2', ${saleB}, 'extra-u2', 'created', ${T0}, ${T0 + 600_000})`);
      });
      const problems = failed(await checkInvariants(url));
      assert.match(problems['live orders ≤ stock (no oversell)'] ?? '', new RegExp(`sale ${saleB}: 4 live orders, stock 3`));
      assert.match(problems['sold = live orders'] ?? '', new RegExp(`sale ${saleB}: sold 2, 4 live orders`));
    });

    it('names the sale whose sold count differs from its live orders', async () => {
      const url = await freshDatabaseUrl(dialect);
      const { saleA } = await knownShop(url);
      await onOneConnection(url, (run) => run(`update sales set sold = sold - 1 where id = ${saleA}`));
      const report = await checkInvariants(url);
      assert.equal(report.ok, false);
      assert.deepEqual(Object.keys(failed(report)), ['sold = live orders']);
      assert.match(failed(report)['sold = live orders'] ?? '', new RegExp(`sale ${saleA}: sold 3, 4 live orders`));
    });

    it('names a paid order that has no payment', async () => {
      const url = await freshDatabaseUrl(dialect);
      const { created } = await knownShop(url);
      const unpaid = created[0] as string;
      await onOneConnection(url, (run) => run(`update orders set status = 'paid', paid_at = ${T0 + 20} where id = '${unpaid}'`));
      const problems = failed(await checkInvariants(url));
      assert.deepEqual(Object.keys(problems), ['every paid order has exactly one payment']);
      assert.match(problems['every paid order has exactly one payment'] ?? '', new RegExp(`order ${unpaid}: 0 payments`));
    });

    it('names a payment whose order does not exist', async () => {
      const url = await freshDatabaseUrl(dialect);
      await knownShop(url);
      await onOneConnection(url, async (run, kind) => {
        // The foreign key forbids it; only a damaged or hand-edited copy has one.
        const [off, on] = {
          sqlite: ['pragma foreign_keys = off', 'pragma foreign_keys = on'],
          mysql: ['set foreign_key_checks = 0', 'set foreign_key_checks = 1'],
          postgres: ['set session_replication_role = replica', 'set session_replication_role = origin'],
        }[kind];
        await run(off as string);
        await run(`insert into payments (order_id, paid_at) values ('ghost-order', ${T0})`);
        await run(on as string);
      });
      const problems = failed(await checkInvariants(url));
      assert.deepEqual(Object.keys(problems), ['no payment without a paid order']);
      assert.match(problems['no payment without a paid order'] ?? '', /payment of order ghost-order: no such order/);
    });

    it('names an order that is both accepted and rejected', async () => {
      const url = await freshDatabaseUrl(dialect);
      const { saleA, created } = await knownShop(url);
      const order = created[0] as string;
      await onOneConnection(url, (run) =>
        run(`insert into rejected_orders (id, sale_id, user_id, reason, created_at) values ('${order}', ${saleA}, 'someone', 'sold_out', ${T0})`),
      );
      const problems = failed(await checkInvariants(url));
      assert.deepEqual(Object.keys(problems), ['no order both accepted and rejected']);
      assert.match(problems['no order both accepted and rejected'] ?? '', new RegExp(`order ${order}`));
    });
  });
}
