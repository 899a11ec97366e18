import { Migrator, sql } from 'kysely';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DatabaseBackend } from './dialects/database-backend.js';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, SeckillMigrationProvider } from './migrations/seckill-migrations.js';
import type {
  AcceptedOrder,
  CancelOutcome,
  DatabaseDialect,
  MigrationOutcome,
  NewSale,
  Order,
  PayOutcome,
  PersistResult,
  RejectReason,
  Sale,
  SaleOrderCounts,
  SeckillDatabase,
  StoredOrderStatus,
  UnreleasedOrder,
} from './seckill-database.js';
import { MAX_ORDER_ID_LENGTH, MAX_USER_ID_LENGTH } from './tables.js';
import type { OrdersTable, RejectedOrdersTable, SalesTable, SeckillTables } from './tables.js';

/** Statuses of orders that ended and so no longer hold a unit. */
const ENDED_STATUSES: readonly StoredOrderStatus[] = ['expired', 'cancelled'];
/** Rows per page of {@link KyselyDatabase.saleBuyers}. */
const BUYERS_PAGE_SIZE = 1_000;
/** Runs of a transaction the server aborted to break a deadlock before the error is passed on. */
const MAX_TRANSACTION_ATTEMPTS = 3;
/** Columns the order writer fills per order row; sizes the multi-row insert. */
const ORDER_INSERT_COLUMNS = 6;

type Db = Kysely<SeckillTables>;

/** Thrown inside the optimistic attempt to roll it back and classify the batch first. */
class NeedsCarefulPersist extends Error {
  constructor() {
    super('the batch needs the careful path');
  }
}

/** An order the batch refuses, with the acceptance time its rejection row keeps. */
interface RefusedOrder {
  readonly order: AcceptedOrder;
  readonly reason: RejectReason;
}

/**
 * The one query layer behind {@link SeckillDatabase} for all three databases; what differs
 * between them comes from the {@link DatabaseBackend} it is given.
 *
 * Every transaction that changes `sold` or inserts orders of a sale first locks that sale's
 * row: writers of one sale then take their locks in the same order (sale, then orders), so
 * they queue instead of deadlocking, and what a writer reads under the lock stays true
 * until it commits. The few deadlocks left (bulk updates of released_at) are retried.
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
    if (orders.length === 0) return { inserted: [], replayed: [], rejected: [] };
    for (const order of orders) assertStorable(order);
    const windowMs = paymentWindowSeconds * 1000;
    const batch = [...orders].sort((a, b) => a.createdAt - b.createdAt);
    try {
      return await this.#transaction((trx) => this.#persistOptimistically(trx, saleId, batch, windowMs));
    } catch (error) {
      if (!(error instanceof NeedsCarefulPersist)) throw error;
    }
    return this.#transaction((trx) => this.#persistCarefully(trx, saleId, batch, windowMs));
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
    return this.#transaction(async (trx) => {
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
        await this.#lockSale(trx, state.saleId);
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
    return this.#transaction(async (trx) => {
      let state = await orderState(trx, orderId);
      if (state?.status === 'created') {
        await this.#lockSale(trx, state.saleId);
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
      expired += await this.#transaction(async (trx) => {
        await this.#lockSale(trx, saleId);
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
    await this.#transaction(async (trx) => {
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
    return this.#transaction(async (trx) => {
      // Under the sale lock no order of this sale ends while the list is taken.
      await this.#lockSale(trx, saleId);
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

  /**
   * The common batch: new orders of distinct users that fit in the stock. One multi-row
   * insert that skips key conflicts, then the guarded `sold` update. Anything unusual (a
   * replay, a user who already holds an order, an order refused before, not enough stock)
   * throws {@link NeedsCarefulPersist}, which rolls the attempt back whole.
   */
  async #persistOptimistically(
    trx: Transaction<SeckillTables>,
    saleId: number,
    batch: readonly AcceptedOrder[],
    windowMs: number,
  ): Promise<PersistResult> {
    const sale = await this.#lockSale(trx, saleId);
    const orderIds = batch.map((order) => order.orderId);
    if (batch.length > sale.stock - sale.sold || new Set(orderIds).size !== orderIds.length) {
      throw new NeedsCarefulPersist();
    }
    const count = await this.#insertOrders(trx, saleId, batch, windowMs);
    // Fewer rows than sent: some ids or (sale, user) pairs were already there. And an order
    // refused earlier must stay refused even though the insert, not knowing it, just took it.
    if (count !== batch.length || (await this.#anyRejected(trx, saleId, orderIds))) throw new NeedsCarefulPersist();
    await this.#addSold(trx, saleId, count);
    return { inserted: orderIds, replayed: [], rejected: [] };
  }

  /**
   * A batch with replays, duplicate users or more orders than stock, classified before
   * anything is written. The sale lock means no other writer adds orders of this sale
   * meanwhile, so what is read here stays true until commit. Orders already recorded (in
   * `orders` or `rejected_orders`) are replays and change nothing; a user who already holds
   * an order, or appears earlier in the batch, gets `duplicate_user`; the earliest of the
   * rest take the remaining stock and the others are `sold_out`.
   */
  async #persistCarefully(
    trx: Transaction<SeckillTables>,
    saleId: number,
    batch: readonly AcceptedOrder[],
    windowMs: number,
  ): Promise<PersistResult> {
    const sale = await this.#lockSale(trx, saleId);
    const recorded = await this.#recordedOrderIds(trx, [...new Set(batch.map((order) => order.orderId))]);
    const replayed: string[] = [];
    const seen = new Set<string>();
    const fresh: AcceptedOrder[] = [];
    for (const order of batch) {
      if (recorded.has(order.orderId) || seen.has(order.orderId)) replayed.push(order.orderId);
      else fresh.push(order);
      seen.add(order.orderId);
    }
    const holders = await this.#orderHolders(trx, saleId, fresh);
    const available = sale.stock - sale.sold;
    const inserted: AcceptedOrder[] = [];
    const rejected: RefusedOrder[] = [];
    for (const order of fresh) {
      if (holders.has(order.userId)) {
        rejected.push({ order, reason: 'duplicate_user' });
      } else if (inserted.length < available) {
        inserted.push(order);
        holders.set(order.userId, order.orderId);
      } else {
        rejected.push({ order, reason: 'sold_out' });
      }
    }
    const count = await this.#insertOrders(trx, saleId, inserted, windowMs);
    if (count !== inserted.length) {
      throw new Error(
        `sale ${saleId}: ${inserted.length} orders were classified as new but ${count} could be inserted; ` +
          'the batch was rolled back, nothing was written',
      );
    }
    await this.#recordRejections(trx, saleId, rejected);
    await this.#addSold(trx, saleId, count);
    return {
      inserted: inserted.map((order) => order.orderId),
      replayed,
      rejected: rejected.map(({ order, reason }) => ({ orderId: order.orderId, userId: order.userId, reason })),
    };
  }

  /**
   * I1 in the database itself: `sold = sold + k` only while it stays within stock. Under the
   * sale lock it always passes; if it ever did not, throwing rolls the batch back rather
   * than overselling.
   */
  async #addSold(trx: Transaction<SeckillTables>, saleId: number, k: number): Promise<void> {
    if (k === 0) return;
    const guarded = await trx
      .updateTable('sales')
      .set((eb) => ({ sold: eb('sold', '+', k) }))
      .where('id', '=', saleId)
      .where((eb) => eb(eb('sold', '+', k), '<=', eb.ref('stock')))
      .executeTakeFirst();
    if (Number(guarded.numUpdatedRows) !== 1) {
      throw new Error(`sale ${saleId}: ${k} new orders would exceed its stock; the batch was rolled back`);
    }
  }

  /**
   * Whether any of `orderIds` was refused before. Most sales never refuse an order, so a
   * one-row probe spares the id lookup in the common case.
   */
  async #anyRejected(trx: Transaction<SeckillTables>, saleId: number, orderIds: readonly string[]): Promise<boolean> {
    const probe = await trx.selectFrom('rejected_orders').select('id').where('sale_id', '=', saleId).limit(1).execute();
    if (probe.length === 0) return false;
    for (const chunk of chunked(orderIds, this.#backend.maxParameters - 1)) {
      const rows = await trx.selectFrom('rejected_orders').select('id').where('id', 'in', chunk).limit(1).execute();
      if (rows.length > 0) return true;
    }
    return false;
  }

  /** Locks the sale's row until the transaction ends and returns its stock and sold. */
  async #lockSale(trx: Transaction<SeckillTables>, saleId: number): Promise<{ stock: number; sold: number }> {
    let query = trx.selectFrom('sales').select(['stock', 'sold']).where('id', '=', saleId);
    if (this.#backend.rowLocks) query = query.forUpdate();
    const sale = await query.executeTakeFirst();
    if (sale === undefined) throw new Error(`sale ${saleId} does not exist; create it before writing its orders`);
    return { stock: Number(sale.stock), sold: Number(sale.sold) };
  }

  /** Ids among `orderIds` recorded in `orders` or `rejected_orders`, of any sale. */
  async #recordedOrderIds(trx: Transaction<SeckillTables>, orderIds: readonly string[]): Promise<Set<string>> {
    const recorded = new Set<string>();
    for (const chunk of chunked(orderIds, this.#backend.maxParameters)) {
      for (const table of ['orders', 'rejected_orders'] as const) {
        const rows = await trx.selectFrom(table).select('id').where('id', 'in', chunk).execute();
        for (const row of rows) recorded.add(row.id);
      }
    }
    return recorded;
  }

  /** For each user of `orders`, the id of the order they hold in the sale, if any. */
  async #orderHolders(
    trx: Transaction<SeckillTables>,
    saleId: number,
    orders: readonly AcceptedOrder[],
  ): Promise<Map<string, string>> {
    const holders = new Map<string, string>();
    const userIds = [...new Set(orders.map((order) => order.userId))];
    for (const chunk of chunked(userIds, this.#backend.maxParameters - 1)) {
      const rows = await trx
        .selectFrom('orders')
        .select(['user_id', 'id'])
        .where('sale_id', '=', saleId)
        .where('user_id', 'in', chunk)
        .execute();
      for (const row of rows) holders.set(row.user_id, row.id);
    }
    return holders;
  }

  /** Inserts orders as `created`, skipping key conflicts; returns how many rows it inserted. */
  async #insertOrders(
    trx: Transaction<SeckillTables>,
    saleId: number,
    orders: readonly AcceptedOrder[],
    windowMs: number,
  ): Promise<number> {
    let count = 0;
    for (const chunk of chunked(orders, Math.floor(this.#backend.maxParameters / ORDER_INSERT_COLUMNS))) {
      const query = trx.insertInto('orders').values(
        chunk.map((order) => ({
          id: order.orderId,
          sale_id: saleId,
          user_id: order.userId,
          status: 'created' as const,
          created_at: order.createdAt,
          expires_at: order.createdAt + windowMs,
        })),
      );
      const result = await this.#backend.ignoreConflicts(query).executeTakeFirst();
      count += Number(result.numInsertedOrUpdatedRows ?? 0n);
    }
    return count;
  }

  /**
   * Records refused orders. A `sold_out` one is released at once: its unit never existed in
   * the database, so the stock store must not get it back. A `duplicate_user` one did hold
   * a unit in the stock store and waits, unreleased, for it to be given back.
   */
  async #recordRejections(
    trx: Transaction<SeckillTables>,
    saleId: number,
    rejected: readonly RefusedOrder[],
  ): Promise<void> {
    const columns = 6;
    for (const chunk of chunked(rejected, Math.floor(this.#backend.maxParameters / columns))) {
      const query = trx.insertInto('rejected_orders').values(
        chunk.map(({ order, reason }) => ({
          id: order.orderId,
          sale_id: saleId,
          user_id: order.userId,
          reason,
          created_at: order.createdAt,
          released_at: reason === 'sold_out' ? order.createdAt : null,
        })),
      );
      await this.#backend.ignoreConflicts(query).execute();
    }
  }

  /**
   * Runs `work` in one transaction, again from the start when the server aborted it to
   * break a deadlock; any other error (a lost connection too) is passed on, and the
   * transaction has then been rolled back whole.
   */
  async #transaction<T>(work: (trx: Transaction<SeckillTables>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#db.transaction().execute(work);
      } catch (error) {
        if (attempt >= MAX_TRANSACTION_ATTEMPTS || !this.#backend.isRetryableConflict(error)) throw error;
      }
    }
  }
}

/** The order's status and sale, reading a rejected order as `cancelled` as getOrder does. */
async function orderState(
  trx: Transaction<SeckillTables>,
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
  trx: Transaction<SeckillTables>,
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


/** Refuses ids that do not fit their columns, so no database truncates or rejects them half-way. */
function assertStorable(order: AcceptedOrder): void {
  if (order.orderId.length === 0 || order.orderId.length > MAX_ORDER_ID_LENGTH) {
    throw new Error(
      `order id "${order.orderId}" must be 1 to ${MAX_ORDER_ID_LENGTH} characters; the batch was not written`,
    );
  }
  if (order.userId.length === 0 || order.userId.length > MAX_USER_ID_LENGTH) {
    throw new Error(
      `user id of order ${order.orderId} must be 1 to ${MAX_USER_ID_LENGTH} characters; the batch was not written`,
    );
  }
}

function* chunked<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

// Drivers return integers as number, bigint or string depending on type and size; Number()
// gives the domain one shape whatever the database.
function toSale(row: Selectable<SalesTable>): Sale {
  return {
    id: Number(row.id),
    name: row.name,
    stock: Number(row.stock),
    sold: Number(row.sold),
    startsAt: Number(row.starts_at),
    endsAt: Number(row.ends_at),
    paymentWindowSeconds: Number(row.payment_window_seconds),
    createdAt: Number(row.created_at),
  };
}

function toOrder(row: Selectable<OrdersTable>): Order {
  return {
    id: row.id,
    saleId: Number(row.sale_id),
    userId: row.user_id,
    status: row.status,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    paidAt: row.paid_at === null ? null : Number(row.paid_at),
    cancelledAt: row.cancelled_at === null ? null : Number(row.cancelled_at),
    reason: row.reason,
  };
}

/** A refused order reads as cancelled at acceptance, never having held a unit. */
function rejectedToOrder(row: Selectable<RejectedOrdersTable>): Order {
  const createdAt = Number(row.created_at);
  return {
    id: row.id,
    saleId: Number(row.sale_id),
    userId: row.user_id,
    status: 'cancelled',
    createdAt,
    expiresAt: createdAt,
    paidAt: null,
    cancelledAt: createdAt,
    reason: row.reason,
  };
}
