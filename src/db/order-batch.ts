import { CompiledQuery } from 'kysely';
import { chunked } from './chunked.js';
import type { DatabaseBackend } from './dialects/database-backend.js';
import type { AcceptedOrder, DatabaseDialect, PersistResult, RejectReason } from './seckill-database.js';
import { MAX_ORDER_ID_LENGTH, MAX_USER_ID_LENGTH } from './tables.js';
import { inTransaction, lockSale } from './transaction.js';
import type { SeckillTransaction } from './transaction.js';

/** Columns the order writer fills per order row; sizes the multi-row insert. */
const ORDER_INSERT_COLUMNS = 6;
/** Columns of a `rejected_orders` row. */
const REJECTION_COLUMNS = 6;

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
 * Writes one batch of the order writer (`SeckillDatabase.persistOrders`): first
 * optimistically, as one multi-row insert and a guarded `sold` update; when the batch turns
 * out to hold replays, duplicate users or more orders than stock, that attempt is rolled
 * back and the batch classified and written carefully in a new transaction. Either way it
 * is one transaction under the sale's row lock, so it is all written or none of it.
 */
export async function persistOrderBatch(
  backend: DatabaseBackend,
  saleId: number,
  orders: readonly AcceptedOrder[],
  paymentWindowSeconds: number,
): Promise<PersistResult> {
  if (orders.length === 0) return { inserted: [], replayed: [], rejected: [] };
  for (const order of orders) assertStorable(order);
  const windowMs = paymentWindowSeconds * 1000;
  // Stable: the earlier order of a user wins, and the earlier orders get the last units.
  const batch = [...orders].sort((a, b) => a.createdAt - b.createdAt);
  try {
    return await inTransaction(backend, (trx) => persistOptimistically(backend, trx, saleId, batch, windowMs));
  } catch (error) {
    if (!(error instanceof NeedsCarefulPersist)) throw error;
  }
  return inTransaction(backend, (trx) => persistCarefully(backend, trx, saleId, batch, windowMs));
}

/**
 * The common batch: new orders of distinct users that fit in the stock. One multi-row
 * insert that skips key conflicts, then the guarded `sold` update. Anything unusual (a
 * replay, a user who already holds an order, an order refused before, not enough stock)
 * throws {@link NeedsCarefulPersist}, which rolls the attempt back whole.
 */
async function persistOptimistically(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  batch: readonly AcceptedOrder[],
  windowMs: number,
): Promise<PersistResult> {
  const sale = await lockSale(backend, trx, saleId);
  const orderIds = batch.map((order) => order.orderId);
  if (batch.length > sale.stock - sale.sold || new Set(orderIds).size !== orderIds.length) {
    throw new NeedsCarefulPersist();
  }
  const count = await insertOrders(backend, trx, saleId, batch, windowMs);
  // Fewer rows than sent: some ids or (sale, user) pairs were already there. And an order
  // refused earlier must stay refused even though the insert, not knowing it, just took it.
  if (count !== batch.length || (await anyRejected(backend, trx, saleId, orderIds))) {
    throw new NeedsCarefulPersist();
  }
  await addSold(trx, saleId, count);
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
async function persistCarefully(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  batch: readonly AcceptedOrder[],
  windowMs: number,
): Promise<PersistResult> {
  const sale = await lockSale(backend, trx, saleId);
  const recorded = await recordedOrderIds(backend, trx, [...new Set(batch.map((order) => order.orderId))]);
  const replayed: string[] = [];
  const seen = new Set<string>();
  const fresh: AcceptedOrder[] = [];
  for (const order of batch) {
    if (recorded.has(order.orderId) || seen.has(order.orderId)) replayed.push(order.orderId);
    else fresh.push(order);
    seen.add(order.orderId);
  }
  const holders = await orderHolders(backend, trx, saleId, fresh);
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
  const count = await insertOrders(backend, trx, saleId, inserted, windowMs);
  if (count !== inserted.length) {
    throw new Error(
      `sale ${saleId}: ${inserted.length} orders were classified as new but ${count} could be inserted; ` +
        'the batch was rolled back, nothing was written',
    );
  }
  await recordRejections(backend, trx, saleId, rejected);
  await addSold(trx, saleId, count);
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
async function addSold(trx: SeckillTransaction, saleId: number, k: number): Promise<void> {
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
async function anyRejected(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  orderIds: readonly string[],
): Promise<boolean> {
  const probe = await trx.selectFrom('rejected_orders').select('id').where('sale_id', '=', saleId).limit(1).execute();
  if (probe.length === 0) return false;
  for (const chunk of chunked(orderIds, backend.maxParameters - 2)) {
    const rows = await trx
      .selectFrom('rejected_orders')
      .select('id')
      .where('sale_id', '=', saleId)
      .where('id', 'in', chunk)
      .limit(1)
      .execute();
    if (rows.length > 0) return true;
  }
  return false;
}

/** Ids among `orderIds` recorded in `orders` or `rejected_orders`, of any sale. */
async function recordedOrderIds(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  orderIds: readonly string[],
): Promise<Set<string>> {
  const recorded = new Set<string>();
  for (const chunk of chunked(orderIds, backend.maxParameters)) {
    for (const table of ['orders', 'rejected_orders'] as const) {
      const rows = await trx.selectFrom(table).select('id').where('id', 'in', chunk).execute();
      for (const row of rows) recorded.add(row.id);
    }
  }
  return recorded;
}

/** For each user of `orders`, the id of the order they hold in the sale, if any. */
async function orderHolders(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  orders: readonly AcceptedOrder[],
): Promise<Map<string, string>> {
  const holders = new Map<string, string>();
  const userIds = [...new Set(orders.map((order) => order.userId))];
  for (const chunk of chunked(userIds, backend.maxParameters - 1)) {
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

/**
 * Inserts orders as `created`, skipping key conflicts; returns how many rows it inserted.
 *
 * Sent as SQL text built here rather than through kysely's insert builder: building and
 * compiling a 1,000-row, 6,000-parameter insert object by object was about a third of the
 * order writer's CPU, while the text depends only on the dialect and the row count (see
 * {@link insertOrdersSql}). Values still travel as bind parameters, as before.
 */
async function insertOrders(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  orders: readonly AcceptedOrder[],
  windowMs: number,
): Promise<number> {
  let count = 0;
  for (const chunk of chunked(orders, Math.floor(backend.maxParameters / ORDER_INSERT_COLUMNS))) {
    const parameters: unknown[] = new Array(chunk.length * ORDER_INSERT_COLUMNS);
    let p = 0;
    for (const order of chunk) {
      // In the column order of ORDER_INSERT_SQL.columns.
      parameters[p++] = order.orderId;
      parameters[p++] = saleId;
      parameters[p++] = order.userId;
      parameters[p++] = 'created';
      parameters[p++] = order.createdAt;
      parameters[p++] = order.createdAt + windowMs;
    }
    const result = await trx.executeQuery(CompiledQuery.raw(insertOrdersSql(backend.dialect, chunk.length), parameters));
    // INSERT IGNORE and ON CONFLICT DO NOTHING count only the rows they inserted.
    count += Number(result.numAffectedRows ?? 0n);
  }
  return count;
}

/**
 * The multi-row insert of {@link insertOrders} in each dialect; `ignore`/`onConflict` skip
 * rows that hit the primary key or `(sale_id, user_id)`, as `backend.ignoreConflicts` does
 * for kysely queries.
 */
const ORDER_INSERT_SQL = {
  columns: ['id', 'sale_id', 'user_id', 'status', 'created_at', 'expires_at'],
  mysql: { quote: '`', insert: 'insert ignore into', onConflict: '', numbered: false },
  postgres: { quote: '"', insert: 'insert into', onConflict: ' on conflict do nothing', numbered: true },
  sqlite: { quote: '"', insert: 'insert into', onConflict: ' on conflict do nothing', numbered: false },
} as const;

/** Statement texts by dialect and row count: a full batch reuses its text every time. */
const insertSqlCache = new Map<string, string>();
/** Partial batches come in many sizes; keep the most recent few. */
const INSERT_SQL_CACHE_SIZE = 16;

/** `insert … values (…), (…) …` for `rows` orders in `dialect`, with `?` or `$n` placeholders. */
function insertOrdersSql(dialect: DatabaseDialect, rows: number): string {
  const key = `${dialect}:${rows}`;
  let text = insertSqlCache.get(key);
  if (text !== undefined) return text;
  const { quote, insert, onConflict, numbered } = ORDER_INSERT_SQL[dialect];
  const columns = ORDER_INSERT_SQL.columns.map((column) => `${quote}${column}${quote}`).join(', ');
  const values: string[] = new Array(rows);
  if (numbered) {
    for (let row = 0, n = 1; row < rows; row++, n += ORDER_INSERT_COLUMNS) {
      values[row] = `($${n}, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5})`;
    }
  } else {
    values.fill('(?, ?, ?, ?, ?, ?)');
  }
  text = `${insert} ${quote}orders${quote} (${columns}) values ${values.join(', ')}${onConflict}`;
  if (insertSqlCache.size >= INSERT_SQL_CACHE_SIZE) insertSqlCache.delete(insertSqlCache.keys().next().value!);
  insertSqlCache.set(key, text);
  return text;
}

/**
 * Records refused orders. A `sold_out` one is released at once: its unit never existed in
 * the database, so the stock store must not get it back. A `duplicate_user` one did hold
 * a unit in the stock store and waits, unreleased, for it to be given back.
 */
async function recordRejections(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
  rejected: readonly RefusedOrder[],
): Promise<void> {
  for (const chunk of chunked(rejected, Math.floor(backend.maxParameters / REJECTION_COLUMNS))) {
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
    await backend.ignoreConflicts(query).execute();
  }
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
