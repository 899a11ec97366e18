import { ReserveCode } from '../stock/stock-store.js';
import type { StockStore } from '../stock/stock-store.js';
import { newOrderId } from './order-id.js';
import type { SaleCatalog } from './sale-catalog.js';
import { SoldOutHolders } from './sold-out-holders.js';

/** What a purchase attempt came to; the HTTP layer maps each kind to a status and code. */
export type PurchaseResult =
  | { readonly kind: 'reserved'; readonly orderId: string }
  | { readonly kind: 'existing'; readonly orderId: string }
  | { readonly kind: 'sold_out' }
  | { readonly kind: 'not_active' }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'rate_limited' }
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface CheckoutOptions {
  readonly rateLimitPerUser: number;
  readonly rateLimitPerIp: number;
}

/**
 * The purchase path: sale window and sold-out flag in process, then one atomic reservation
 * in the stock store, then the configured durability wait. Any failure of a dependency is
 * answered at once as `unavailable` (the client retries, and a retry returns the same
 * order), never by hanging.
 */
export class Checkout {
  readonly #store: StockStore;
  readonly #catalog: SaleCatalog;
  readonly #options: CheckoutOptions;
  readonly #holders: SoldOutHolders;

  constructor(store: StockStore, catalog: SaleCatalog, options: CheckoutOptions, holders = new SoldOutHolders(store)) {
    this.#store = store;
    this.#catalog = catalog;
    this.#options = Object.freeze({ ...options });
    this.#holders = holders;
  }

  /**
   * True when this node already knows the sale is sold out (an open sale, flagged in the
   * last second): unless the buyer may hold an order in it ({@link Checkout.mayHoldOrder}),
   * the caller can answer SOLD_OUT before any other work, the token check included.
   */
  knownSoldOut(saleId: number, now = Date.now()): boolean {
    const sale = this.#catalog.peek(saleId);
    return sale !== undefined && now >= sale.startsAt && now < sale.endsAt && this.#catalog.isSoldOut(saleId, now);
  }

  /**
   * Whether the user a request claims to be may hold an order in a sale known to be sold
   * out, and so must go down the full path to get that order back (see {@link SoldOutHolders}).
   * `claimedUser` gives the `sub` the token claims, unverified (null when there is none):
   * it only chooses the path, and is called only once this node knows the sale's buyers.
   */
  mayHoldOrder(saleId: number, claimedUser: () => string | null): boolean {
    if (!this.#holders.knows(saleId)) return false;
    const user = claimedUser();
    return user !== null && this.#holders.mightHold(saleId, user);
  }

  /** Tries to buy one unit of `saleId` for `userId` coming from `ip`. */
  async purchase(saleId: number, userId: string, ip: string, now = Date.now()): Promise<PurchaseResult> {
    let sale = this.#catalog.peek(saleId);
    if (!sale) {
      try {
        sale = await this.#catalog.get(saleId, now);
      } catch (err) {
        return { kind: 'unavailable', reason: `database: ${(err as Error).message}` };
      }
    }
    if (!sale) return { kind: 'not_found' };
    if (now < sale.startsAt || now >= sale.endsAt) return { kind: 'not_active' };
    if (this.#catalog.isSoldOut(saleId, now) && !this.#holders.mightHold(saleId, userId)) return { kind: 'sold_out' };

    try {
      if (this.#options.rateLimitPerIp > 0 && !(await this.#store.allowIp(ip, this.#options.rateLimitPerIp, now))) {
        return { kind: 'rate_limited' };
      }
      const result = await this.#store.reserve({
        saleId,
        userId,
        orderId: newOrderId(saleId, now),
        now,
        perUserLimit: this.#options.rateLimitPerUser,
      });
      switch (result.code) {
        case ReserveCode.Reserved:
          if (!(await this.#store.awaitDurable(saleId, result.orderId!))) {
            return { kind: 'unavailable', reason: 'the reservation could not be confirmed durable in time' };
          }
          return { kind: 'reserved', orderId: result.orderId! };
        case ReserveCode.Duplicate:
          return { kind: 'existing', orderId: result.orderId! };
        case ReserveCode.SoldOut:
          this.#catalog.markSoldOut(saleId, now);
          this.#holders.refresh(saleId, now);
          return { kind: 'sold_out' };
        case ReserveCode.RateLimited:
          return { kind: 'rate_limited' };
        case ReserveCode.NotWarmed:
          return { kind: 'unavailable', reason: `sale ${saleId} has no stock state; run \`seckill reconcile --repair\`` };
      }
    } catch (err) {
      return { kind: 'unavailable', reason: `stock store: ${(err as Error).message}` };
    }
  }
}
