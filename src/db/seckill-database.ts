/**
 * The database as the flash-sale sees it: the source of truth for sales and orders
 * (invariant I5) and the final arbiter against overselling (I1). One implementation serves
 * SQLite, MariaDB/MySQL and PostgreSQL; all times are milliseconds since the Unix epoch.
 */

export type DatabaseDialect = 'sqlite' | 'mysql' | 'postgres';

/** Order statuses as stored; `pending` (accepted, still queued) never reaches the database. */
export type StoredOrderStatus = 'created' | 'paid' | 'expired' | 'cancelled';

/** Statuses that hold a unit of stock. */
export const LIVE_STATUSES: readonly StoredOrderStatus[] = ['created', 'paid'];

export interface Sale {
  readonly id: number;
  readonly name: string;
  readonly stock: number;
  /** Live orders (created + paid) persisted for this sale; never above `stock`. */
  readonly sold: number;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly paymentWindowSeconds: number;
  readonly createdAt: number;
}

export interface NewSale {
  readonly name: string;
  readonly stock: number;
  readonly startsAt: number;
  readonly endsAt: number;
  readonly paymentWindowSeconds: number;
  readonly now: number;
}

export interface Order {
  readonly id: string;
  readonly saleId: number;
  readonly userId: string;
  readonly status: StoredOrderStatus;
  readonly createdAt: number;
  /** When an unpaid order stops holding its unit. */
  readonly expiresAt: number;
  readonly paidAt: number | null;
  readonly cancelledAt: number | null;
  /** Why the order ended without the buyer asking (`sold_out`, `duplicate_user`), if it did. */
  readonly reason: string | null;
}

/** An accepted order as the writer hands it to the database. */
export interface AcceptedOrder {
  readonly orderId: string;
  readonly userId: string;
  readonly createdAt: number;
}

export type RejectReason = 'sold_out' | 'duplicate_user';

export interface PersistResult {
  /** Orders written now, as `created`. */
  readonly inserted: readonly string[];
  /** Orders that were already in the database (a replay after a crash): nothing changed. */
  readonly replayed: readonly string[];
  /** Orders refused by the database, recorded as cancelled with the reason, never as live. */
  readonly rejected: readonly { readonly orderId: string; readonly userId: string; readonly reason: RejectReason }[];
}

export type PayOutcome = 'paid' | 'already_paid' | 'expired' | 'cancelled' | 'not_found';
export type CancelOutcome = 'cancelled' | 'already_cancelled' | 'paid' | 'expired' | 'not_found';

export interface SaleOrderCounts {
  readonly created: number;
  readonly paid: number;
  readonly expired: number;
  readonly cancelled: number;
}

/**
 * An ended order whose unit has not yet been given back to the stock store: expired,
 * cancelled, or rejected as `duplicate_user`. (A `sold_out` rejection is not: its unit never
 * existed, so giving it back would put a phantom unit on sale.)
 */
export interface UnreleasedOrder {
  readonly orderId: string;
  readonly saleId: number;
}

export interface MigrationOutcome {
  readonly applied: readonly string[];
  readonly error?: Error;
}

export interface SeckillDatabase {
  readonly dialect: DatabaseDialect;

  /** Brings the schema up to date; returns what it applied instead of throwing half-way. */
  migrate(): Promise<MigrationOutcome>;

  createSale(sale: NewSale): Promise<Sale>;
  getSale(id: number): Promise<Sale | undefined>;
  listSales(): Promise<Sale[]>;

  /**
   * Writes a batch of accepted orders of one sale in one transaction: a guarded
   * `sold = sold + k WHERE sold + k <= stock` and a multi-row insert keyed by order id.
   * Replays are no-ops; an order over stock or from a user who already has one is recorded
   * as cancelled with its reason, never inserted as live.
   */
  persistOrders(saleId: number, orders: readonly AcceptedOrder[], paymentWindowSeconds: number): Promise<PersistResult>;

  getOrder(orderId: string): Promise<Order | undefined>;

  /** Pays a `created` order (records a payment row); an order past its window expires instead. */
  payOrder(orderId: string, now: number): Promise<PayOutcome>;

  /** Cancels a `created` order and frees its unit in `sold`; idempotent. */
  cancelOrder(orderId: string, now: number): Promise<CancelOutcome>;

  /** Expires up to `limit` unpaid orders past their window, freeing their units in `sold`. Returns how many. */
  expireDue(now: number, limit: number): Promise<number>;

  /** Ended orders (expired, cancelled, rejected) whose unit the stock store has not yet taken back. */
  unreleasedOrders(limit: number): Promise<UnreleasedOrder[]>;

  /** Records that the stock store took these orders' units back. */
  markReleased(orderIds: readonly string[], now: number): Promise<void>;

  countOrders(saleId: number): Promise<SaleOrderCounts>;

  /** Every (user id, order id) of the sale, any status, in batches (for rebuilding the buyers set). */
  saleBuyers(saleId: number): AsyncIterable<readonly (readonly [string, string])[]>;

  /** Ids of the sale's ended orders (expired, cancelled, rejected); marks them released as of `now`. */
  settleEndedOrders(saleId: number, now: number): Promise<string[]>;

  /** Which of `orderIds` (of one sale) are in the database, live or not. */
  existingOrderIds(saleId: number, orderIds: readonly string[]): Promise<Set<string>>;

  /** Cheap round trip for health checks. */
  ping(): Promise<boolean>;

  close(): Promise<void>;
}
