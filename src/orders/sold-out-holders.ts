import type { Logger } from 'pino';
import type { StockStore } from '../stock/stock-store.js';
import { BloomFilter } from './bloom-filter.js';

/** How often, at most, a sale's buyer count is compared with the view's. */
const RECHECK_MS = 1000;
/** A sale not flagged sold out for this long (ended, or selling again) is forgotten, filter and all. */
const FORGET_AFTER_MS = 10 * 60_000;

interface SaleHolders {
  /** Buyers when loaded; the count tells when to load again. */
  filter: BloomFilter | undefined;
  count: number;
  checkedAt: number;
  loading: boolean;
}

/**
 * Who holds an order in the sales this node knows to be sold out. Once a sale sells out,
 * the node answers its purchases SOLD_OUT without asking the stock store (that is what keeps
 * a sold-out flood cheap), but a buyer who holds an order and retries (its first answer was
 * lost to a timeout, say) must get that order back, not SOLD_OUT. This view tells the two
 * apart in process: a Bloom filter of the sale's buyers, loaded from the stock store when the
 * node learns the sale is sold out, and loaded again whenever the number of buyers has
 * changed since (units given back and sold again), checked at most once a second.
 *
 * "Maybe" sends the request down the full purchase path (token check, then the stock
 * store, which answers the existing order or SOLD_OUT): a false positive (about 1 %) costs
 * one round trip, never a wrong answer. Until the first load finishes the view knows no
 * one, and holders still get SOLD_OUT, as before it existed.
 */
export class SoldOutHolders {
  readonly #store: Pick<StockStore, 'buyerCount' | 'buyers'>;
  readonly #log: Pick<Logger, 'warn'> | undefined;
  readonly #sales = new Map<number, SaleHolders>();
  #prunedAt = 0;

  constructor(store: Pick<StockStore, 'buyerCount' | 'buyers'>, log?: Pick<Logger, 'warn'>) {
    this.#store = store;
    this.#log = log;
  }

  /**
   * Called when the node learns the sale is sold out: loads its buyers in the background
   * unless loaded with the current count, or checked less than a second ago.
   */
  refresh(saleId: number, now = Date.now()): void {
    if (now - this.#prunedAt > RECHECK_MS * 60) {
      // A filter can take megabytes (about 1.2 MB per million buyers): keep only live ones.
      this.#prunedAt = now;
      for (const [id, held] of this.#sales) if (!held.loading && now - held.checkedAt > FORGET_AFTER_MS) this.#sales.delete(id);
    }
    let sale = this.#sales.get(saleId);
    if (sale === undefined) {
      sale = { filter: undefined, count: -1, checkedAt: -Infinity, loading: false };
      this.#sales.set(saleId, sale);
    }
    if (sale.loading || now - sale.checkedAt < RECHECK_MS) return;
    sale.checkedAt = now;
    sale.loading = true;
    const target = sale;
    this.#load(saleId, target).then(
      () => (target.loading = false),
      (error: unknown) => {
        target.loading = false;
        this.#log?.warn({ err: error, saleId }, 'could not load the buyers of a sold-out sale; holders get SOLD_OUT until the next try');
      },
    );
  }

  /** Whether the sale's buyers are loaded (until then {@link SoldOutHolders.mightHold} says false for everyone). */
  knows(saleId: number): boolean {
    return this.#sales.get(saleId)?.filter !== undefined;
  }

  /** True when `userId` may hold an order in the sale (send it the full path); false when certainly not, or not known yet. */
  mightHold(saleId: number, userId: string): boolean {
    return this.#sales.get(saleId)?.filter?.mightContain(userId) ?? false;
  }

  async #load(saleId: number, sale: SaleHolders): Promise<void> {
    const count = await this.#store.buyerCount(saleId);
    if (count === sale.count && sale.filter !== undefined) return;
    // Room for buyers added while loading; more would only raise the false positives.
    const filter = new BloomFilter(Math.ceil(count * 1.1) + 64);
    for await (const users of this.#store.buyers(saleId)) for (const user of users) filter.add(user);
    sale.filter = filter;
    sale.count = count;
  }
}
