/**
 * Rows as stored (snake_case) to the domain types of `seckill-database.ts`. Drivers return
 * integers as number, bigint or string depending on column type and size; Number() gives
 * the domain one shape whatever the database.
 */
import type { Selectable } from 'kysely';
import type { Order, Sale } from './seckill-database.js';
import type { OrdersTable, RejectedOrdersTable, SalesTable } from './tables.js';

/** A `sales` row as the domain's {@link Sale}. */
export function toSale(row: Selectable<SalesTable>): Sale {
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

/** An `orders` row as the domain's {@link Order}. */
export function toOrder(row: Selectable<OrdersTable>): Order {
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

/** A `rejected_orders` row as an {@link Order}: cancelled at acceptance, never having held a unit. */
export function rejectedToOrder(row: Selectable<RejectedOrdersTable>): Order {
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
