/**
 * Row shapes of the tables as kysely sees them. Column names are snake_case as stored;
 * `KyselyDatabase` maps them to the camelCase domain types of `seckill-database.ts`.
 */
import type { Generated } from 'kysely';
import type { RejectReason, StoredOrderStatus } from './seckill-database.js';

/** One flash sale; `sold` counts its live orders and never exceeds `stock` (a CHECK holds it). */
export interface SalesTable {
  id: Generated<number>;
  name: string;
  stock: number;
  sold: Generated<number>;
  starts_at: number;
  ends_at: number;
  payment_window_seconds: number;
  created_at: number;
}

/** Orders the database accepted; at most one per (sale, user). */
export interface OrdersTable {
  id: string;
  sale_id: number;
  user_id: string;
  status: StoredOrderStatus;
  created_at: number;
  expires_at: number;
  paid_at: number | null;
  cancelled_at: number | null;
  /** When the stock store took the unit of this ended order back; null while it has not. */
  released_at: number | null;
  reason: string | null;
}

/** The payment of a paid order: exactly one row per paid order. */
export interface PaymentsTable {
  order_id: string;
  /** Filled by a payment provider integration; the sale itself records only that and when. */
  amount_cents: number | null;
  reference: string | null;
  paid_at: number;
}

/**
 * Accepted orders the database refused. They live apart from `orders` because a
 * `duplicate_user` rejection would break UNIQUE (sale_id, user_id) there.
 */
export interface RejectedOrdersTable {
  id: string;
  sale_id: number;
  user_id: string;
  reason: RejectReason;
  /** When the order was accepted by the stock store. */
  created_at: number;
  released_at: number | null;
}

/** Every table of the schema, for `Kysely<SeckillTables>`. */
export interface SeckillTables {
  sales: SalesTable;
  orders: OrdersTable;
  payments: PaymentsTable;
  rejected_orders: RejectedOrdersTable;
}

/** Longest order id `orders.id` holds. */
export const MAX_ORDER_ID_LENGTH = 64;
/** Longest user id `orders.user_id` holds. */
export const MAX_USER_ID_LENGTH = 128;
