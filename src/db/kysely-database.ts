import { Migrator, sql } from 'kysely';
import type { Kysely } from 'kysely';
import { chunked } from './chunked.js';
import type { DatabaseBackend } from './dialects/database-backend.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, SeckillMigrationProvider } from './migrations/seckill-migrations.js';
import { persistOrderBatch } from './order-batch.js';
import { rejectedToOrder, toOrder, toSale } from './row-mapping.js';
import type {
  AcceptedOrder,
  CancelOutcome,
  DatabaseDialect,
  MigrationOutcome,
  NewSale,
  Order,
  PayOutcome,
  PersistResult,
  Sale,
  SaleOrderCounts,
  SeckillDatabase,
  StoredOrderStatus,
  UnreleasedOrder,
} from './seckill-database.js';
import type { SeckillTables } from './tables.js';
import { inTransaction, lockSale } from './transaction.js';
import type { SeckillTransaction } from './transaction.js';

/** Statuses of orders that ended and so no longer hold a unit. */
const ENDED_STATUSES: readonly StoredOrderStatus[] = ['expired', 'cancelled'];
/** Rows per page of {@link KyselyDatabase.saleBuyers}. */
const BUYERS_PAGE_SIZE = 1_000;

type Db = Kysely<SeckillTables>;

/**
 * The one query layer behind {@link SeckillDatabase} for all three databases; what differs
 * between them comes from the {@link DatabaseBackend} it is given.
 *
 * Every transaction that changes `sold` or inserts orders of a sale first locks that sale's
 * row ({@link lockSale}); the few deadlocks left (bulk updates of released_at) are retried
 * ({@link inTransaction}). The order writer's batch lives in `order-batch.ts`.
 */
export class KyselyDatabase implements SeckillDatabase {
  readonly #backend: DatabaseBackend;
  readonly #db: Db;

  constructor(backend: DatabaseBackend) {
    this.#backend = backend;
    this.#db = backend.db;
  }

  get dialect(): DatabaseDialect {
    return this.#backend.dialect;
  }

  async migrate(): Promise<MigrationOutcome> {
    try {
      const provider = new SeckillMigrationProvider({
        dialect: this.#backend.dialect,
        tableOptions: await this.#backend.tableOptions(),
      });
      const migrator = new Migrator({
        db: this.#db,
        provider,
        migrationTableName: MIGRATION_TABLE,
        migrationLockTableName: MIGRATION_LOCK_TABLE,
      });
      const { error, results } = await migrator.migrateToLatest();
      const applied = (results ?? [])
        .filter((result) => result.status === 'Success')
        .map((result) => result.migrationName);
      return error === undefined ? { applied } : { applied, error: asError(error) };
    } catch (error) {
      return { applied: [], error: asError(error) };
    }
  }

  async createSale(sale: NewSale): Promise<Sale> {
    const values = {
      name: sale.name,
      stock: sale.stock,
      starts_at: sale.startsAt,
      ends_at: sale.endsAt,
      payment_window_seconds: sale.paymentWindowSeconds,
      created_at: sale.now,
    };
    if (this.#backend.returning) {
      const row = await this.#db.insertInto('sales').values(values).returningAll().executeTakeFirstOrThrow();
      return toSale(row);
    }
    const { insertId } = await this.#db.insertInto('sales').values(values).executeTakeFirstOrThrow();
    const created = insertId === undefined ? undefined : await this.getSale(Number(insertId));
    if (created === undefined) throw new Error(`sale "${sale.name}" was inserted but its row could not be read back`);
    return created;
  }

  async getSale(id: number): Promise<Sale | undefined> {
    const row = await this.#db.selectFrom('sales').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toSale(row);
  }

  async listSales(): Promise<Sale[]> {
    const rows = await this.#db.selectFrom('sales').selectAll().orderBy('id', 'desc').execute();
    return rows.map(toSale);
  }

  async persistOrders(
    saleId: number,
    orders: readonly AcceptedOrder[],
    paymentWindowSeconds: number,
  ): Promise<PersistResult> {
    return persistOrderBatch(this.#backend, saleId, orders, paymentWindowSeconds);
  }

  async getOrder(orderId: string): Promise<Order | undefined> {
    const row = await this.#db.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirst();
    if (row !== undefined) return toOrder(row);
    const rejected = await this.#db
      .selectFrom('rejected_orders')
      .selectAll()
      .where('id', '=', orderId)
      .executeTakeFirst();
    return rejected === undefined ? undefined : rejectedToOrder(rejected);
  }

  async payOrder(orderId: string, now: number): Promise<PayOutcome> {
    return inTransaction(this.#backend, async (trx) => {
      // Conditional, not read-then-write: of two payers only one matches `status = 'created'`.
      const paid = await trx
        .updateTable('orders')
        .set({ status: 'paid', paid_at: now })
        .where('id', '=', orderId)
        .where('status', '=', 'created')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(paid.numUpdatedRows) === 1) {
        await trx.insertInto('payments').values({ order_id: orderId, paid_at: now }).execute();
        return 'paid';
      }
      let state = await orderState(trx, orderId);
      if (state?.status === 'created') {
        // Unpaid past its window: it stopped holding its unit, so end it now rather than
        // leave it for the expirer.
        await lockSale(this.#backend, trx, state.saleId);
        if ((await endOrders(trx, state.saleId, [orderId], 'expired', now)) === 1) return 'expired';
        state = await orderState(trx, orderId);
      }
      switch (state?.status) {
        case undefined:
          return 'not_found';
        case 'paid':
          return 'already_paid';
        case 'expired':
          return 'expired';
        case 'cancelled':
          return 'cancelled';
        case 'created':
          throw new Error(`order ${orderId} is still created after expiring it; this is a bug in the order queries`);
      }
    });
  }

  async cancelOrder(orderId: string, now: number): Promise<CancelOutcome> {
    return inTransaction(this.#backend, async (trx) => {
      let state = await orderState(trx, orderId);
      if (state?.status === 'created') {
        await lockSale(this.#backend, trx, state.saleId);
        if ((await endOrders(trx, state.saleId, [orderId], 'cancelled', now)) === 1) return 'cancelled';
        // Someone paid, expired or cancelled it between the read and the lock.
        state = await orderState(trx, orderId);
      }
      switch (state?.status) {
        case undefined:
          return 'not_found';
        case 'paid':
          return 'paid';
        case 'expired':
          return 'expired';
        case 'cancelled':
          return 'already_cancelled';
        case 'created':
          throw new Error(`order ${orderId} is still created after cancelling it; this is a bug in the order queries`);
      }
    });
  }

  async expireDue(now: number, limit: number): Promise<number> {
    const due = await this.#db
      .selectFrom('orders')
      .select(['id', 'sale_id'])
      .where('status', '=', 'created')
      // Always true of a created order; spelled out so the scan uses orders_lifecycle_idx.
      .where('released_at', 'is', null)
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .limit(limit)
      .execute();
    const bySale = new Map<number, string[]>();
    for (const { id, sale_id } of due) {
      const ids = bySale.get(sale_id) ?? [];
      ids.push(id);
      bySale.set(sale_id, ids);
    }
    let expired = 0;
    // One transaction per sale keeps each sale's lock short; ascending ids keep two
    // expirers from locking the same sales in opposite orders.
    for (const saleId of [...bySale.keys()].sort((a, b) => a - b)) {
      const ids = bySale.get(saleId) ?? [];
      expired += await inTransaction(this.#backend, async (trx) => {
        await lockSale(this.#backend, trx, saleId);
        let count = 0;
        for (const chunk of chunked(ids, this.#backend.maxParameters - 8)) {
          count += await endOrders(trx, saleId, chunk, 'expired', now);
        }
        return count;
      });
    }
    return expired;
  }

  async unreleasedOrders(limit: number): Promise<UnreleasedOrder[]> {
    const ended = await this.#db
      .selectFrom('orders')
      .select(['id', 'sale_id'])
      .where('status', 'in', ENDED_STATUSES)
      .where('released_at', 'is', null)
      .limit(limit)
      .execute();
    const rejected =
      ended.length < limit
        ? await this.#db
            .selectFrom('rejected_orders')
            .select(['id', 'sale_id'])
            .where('released_at', 'is', null)
            .limit(limit - ended.length)
            .execute()
        : [];
    return [...ended, ...rejected].map((row) => ({ orderId: row.id, saleId: row.sale_id }));
  }

  async markReleased(orderIds: readonly string[], now: number): Promise<void> {
    if (orderIds.length === 0) return;
    await inTransaction(this.#backend, async (trx) => {
      for (const chunk of chunked(orderIds, this.#backend.maxParameters - 4)) {
        await trx
          .updateTable('orders')
          .set({ released_at: now })
          .where('id', 'in', chunk)
          .where('status', 'in', ENDED_STATUSES)
          .where('released_at', 'is', null)
          .execute();
        await trx
          .updateTable('rejected_orders')
          .set({ released_at: now })
          .where('id', 'in', chunk)
          .where('released_at', 'is', null)
          .execute();
      }
    });
  }

  async countOrders(saleId: number): Promise<SaleOrderCounts> {
    const rows = await this.#db
      .selectFrom('orders')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .where('sale_id', '=', saleId)
      .groupBy('status')
      .execute();
    const rejected = await this.#db
      .selectFrom('rejected_orders')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('sale_id', '=', saleId)
      .executeTakeFirstOrThrow();
    const counts = { created: 0, paid: 0, expired: 0, cancelled: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    // Rejected orders read as cancelled everywhere else (getOrder), so they count as such.
    counts.cancelled += Number(rejected.count);
    return counts;
  }

  async *saleBuyers(saleId: number): AsyncIterable<readonly (readonly [string, string])[]> {
    // Keyset pagination along UNIQUE (sale_id, user_id): each page is one index range.
    let after: string | undefined;
    for (;;) {
      let query = this.#db
        .selectFrom('orders')
        .select(['user_id', 'id'])
        .where('sale_id', '=', saleId)
        .orderBy('user_id')
        .limit(BUYERS_PAGE_SIZE);
      if (after !== undefined) query = query.where('user_id', '>', after);
      const rows = await query.execute();
      if (rows.length === 0) return;
      yield rows.map((row) => [row.user_id, row.id] as const);
      if (rows.length < BUYERS_PAGE_SIZE) return;
      after = rows[rows.length - 1].user_id;
    }
  }

  async settleEndedOrders(saleId: number, now: number): Promise<string[]> {
    return inTransaction(this.#backend, async (trx) => {
      // Under the sale lock no order of this sale ends while the list is taken.
      await lockSale(this.#backend, trx, saleId);
      await trx
        .updateTable('orders')
        .set({ released_at: now })
        .where('sale_id', '=', saleId)
        .where('status', 'in', ENDED_STATUSES)
        .where('released_at', 'is', null)
        .execute();
      await trx
        .updateTable('rejected_orders')
        .set({ released_at: now })
        .where('sale_id', '=', saleId)
        .where('released_at', 'is', null)
        .execute();
      const rows = await trx
        .selectFrom('orders')
        .select('id')
        .where('sale_id', '=', saleId)
        .where('status', 'in', ENDED_STATUSES)
        .unionAll(trx.selectFrom('rejected_orders').select('id').where('sale_id', '=', saleId))
        .execute();
      return rows.map((row) => row.id);
    });
  }

  async existingOrderIds(saleId: number, orderIds: readonly string[]): Promise<Set<string>> {
    const existing = new Set<string>();
    for (const chunk of chunked(orderIds, Math.floor(this.#backend.maxParameters / 2) - 2)) {
      const rows = await this.#db
        .selectFrom('orders')
        .select('id')
        .where('sale_id', '=', saleId)
        .where('id', 'in', chunk)
        .unionAll(
          this.#db.selectFrom('rejected_orders').select('id').where('sale_id', '=', saleId).where('id', 'in', chunk),
        )
        .execute();
      for (const row of rows) existing.add(row.id);
    }
    return existing;
  }

  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.#db);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.#backend.close();
  }
}

/** The order's status and sale, reading a rejected order as `cancelled` as getOrder does. */
async function orderState(
  trx: SeckillTransaction,
  orderId: string,
): Promise<{ status: StoredOrderStatus; saleId: number } | undefined> {
  const row = await trx.selectFrom('orders').select(['status', 'sale_id']).where('id', '=', orderId).executeTakeFirst();
  if (row !== undefined) return { status: row.status, saleId: row.sale_id };
  const rejected = await trx
    .selectFrom('rejected_orders')
    .select('sale_id')
    .where('id', '=', orderId)
    .executeTakeFirst();
  return rejected === undefined ? undefined : { status: 'cancelled', saleId: rejected.sale_id };
}

/**
 * Ends `created` orders of one sale and gives their units back in `sold`. The update is
 * conditional on `status = 'created'`, and its row count drives the decrement, so of two
 * processes ending the same order only one frees its unit. The caller holds the sale lock.
 */
async function endOrders(
  trx: SeckillTransaction,
  saleId: number,
  orderIds: readonly string[],
  status: 'expired' | 'cancelled',
  now: number,
): Promise<number> {
  let query = trx
    .updateTable('orders')
    .set(status === 'cancelled' ? { status, cancelled_at: now } : { status })
    .where('sale_id', '=', saleId)
    .where('id', 'in', orderIds)
    .where('status', '=', 'created');
  if (status === 'expired') query = query.where('expires_at', '<=', now);
  const ended = Number((await query.executeTakeFirst()).numUpdatedRows);
  if (ended > 0) {
    await trx
      .updateTable('sales')
      .set((eb) => ({ sold: eb('sold', '-', ended) }))
      .where('id', '=', saleId)
      .execute();
  }
  return ended;
}


function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
