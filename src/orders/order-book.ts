import type { StaleReads } from '../db/replica-reads.js';
import type { CancelOutcome, PayOutcome, SeckillDatabase } from '../db/seckill-database.js';
import type { StockStore } from '../stock/stock-store.js';
import { saleIdOfOrder } from './order-id.js';
import type { PaymentWindow } from './payment-window.js';

/** Order status as buyers see it: `pending` means accepted and not yet in the database. */
export type OrderStatus = 'pending' | 'created' | 'paid' | 'expired' | 'cancelled';

export interface OrderView {
  readonly orderId: string;
  readonly saleId: number;
  readonly userId: string;
  readonly status: OrderStatus;
  readonly createdAt: number;
}

/** Who is asking: a buyer (their user id) or an admin. */
export type Viewer = { readonly userId: string } | { readonly admin: true };

/**
 * Reads and changes single orders on behalf of their owner: status, pay, cancel. An order
 * that is still queued is visible as `pending`; paying or cancelling it waits until the
 * writer has recorded it (the caller is told to retry).
 */
export class OrderBook {
  readonly #db: SeckillDatabase;
  readonly #store: StockStore;
  readonly #paymentWindow: PaymentWindow | undefined;
  /** Where order status is read: the database, or a replica within its lag limit. Changes always go to `db`. */
  readonly #reads: StaleReads;

  constructor(db: SeckillDatabase, store: StockStore, paymentWindow?: PaymentWindow, reads: StaleReads = db) {
    this.#db = db;
    this.#reads = reads;
    this.#store = store;
    this.#paymentWindow = paymentWindow;
  }

  /** The order if `viewer` may see it; undefined for unknown orders and other users' orders alike. */
  async find(orderId: string, viewer: Viewer): Promise<OrderView | undefined> {
    const saleId = saleIdOfOrder(orderId);
    if (saleId === null) return undefined;
    const stored = await this.#reads.getOrder(orderId);
    let view: OrderView | undefined;
    if (stored) {
      view = { orderId, saleId: stored.saleId, userId: stored.userId, status: stored.status, createdAt: stored.createdAt };
    } else {
      const userId = await this.#store.findQueued(saleId, orderId);
      if (userId !== null) {
        // The time part of the id is the acceptance time.
        const createdAt = parseInt(orderId.slice(orderId.indexOf('-') + 1, orderId.indexOf('-') + 10), 36);
        view = { orderId, saleId, userId, status: 'pending', createdAt };
      }
    }
    if (!view) return undefined;
    if ('userId' in viewer && viewer.userId !== view.userId) return undefined;
    return view;
  }

  /** Pays the order; `pending` when it is not yet recorded. */
  async pay(orderId: string, viewer: Viewer, now = Date.now()): Promise<PayOutcome | 'pending'> {
    const view = await this.find(orderId, viewer);
    if (!view) return 'not_found';
    if (view.status === 'pending') return 'pending';
    const outcome = await this.#db.payOrder(orderId, now);
    if (outcome === 'expired') await this.#releaseSoon();
    return outcome;
  }

  /** Cancels the order and gives its unit back to sale; `pending` when it is not yet recorded. */
  async cancel(orderId: string, viewer: Viewer, now = Date.now()): Promise<CancelOutcome | 'pending'> {
    const view = await this.find(orderId, viewer);
    if (!view) return 'not_found';
    if (view.status === 'pending') return 'pending';
    const outcome = await this.#db.cancelOrder(orderId, now);
    if (outcome === 'cancelled') await this.#releaseSoon();
    return outcome;
  }

  /**
   * Hands the freed unit back now rather than at the next sweep. Failure is fine: the
   * database remembers the unit is unreleased and the sweep retries.
   */
  async #releaseSoon(): Promise<void> {
    await this.#paymentWindow?.releaseEnded().catch(() => undefined);
  }
}
