import type { StaleReads } from '../db/replica-reads.js';
import type { Sale } from '../db/seckill-database.js';

/** Where a sale stands for buyers at a given moment. */
export type SaleState = 'upcoming' | 'active' | 'sold_out' | 'ended';

/** How long an unknown sale id is remembered as unknown, so a flood of bad ids spares the database. */
const MISS_TTL_MS = 1000;
/** How long a node trusts its own "sold out" flag before asking the stock store again. */
const SOLD_OUT_TTL_MS = 1000;

/**
 * The in-process view of sales on the purchase path: sale windows are cached (a sale does
 * not change once created), and a per-sale "sold out" flag answers a sold-out sale without
 * a round trip to the stock store. The flag expires after a second, because another node
 * may have given units back (expired or cancelled orders).
 */
export class SaleCatalog {
  /** Where sales are read: the database, or its replicas when configured (a sale never changes once created). */
  readonly #db: Pick<StaleReads, 'getSale'>;
  readonly #sales = new Map<number, Sale>();
  readonly #misses = new Map<number, number>();
  readonly #soldOutUntil = new Map<number, number>();

  constructor(db: Pick<StaleReads, 'getSale'>) {
    this.#db = db;
  }

  /** The sale, from the cache or the database; undefined when there is no such sale. */
  async get(saleId: number, now = Date.now()): Promise<Sale | undefined> {
    const cached = this.#sales.get(saleId);
    if (cached) return cached;
    const missUntil = this.#misses.get(saleId);
    if (missUntil !== undefined && missUntil > now) return undefined;
    const sale = await this.#db.getSale(saleId);
    if (sale) {
      this.#sales.set(saleId, sale);
      this.#misses.delete(saleId);
    } else {
      if (this.#misses.size > 10_000) this.#misses.clear();
      this.#misses.set(saleId, now + MISS_TTL_MS);
    }
    return sale;
  }

  /** The sale if it is cached: the purchase path's synchronous fast path. */
  peek(saleId: number): Sale | undefined {
    return this.#sales.get(saleId);
  }

  /** Puts a sale this node just created into the cache. */
  remember(sale: Sale): void {
    this.#sales.set(sale.id, sale);
    this.#misses.delete(sale.id);
  }

  /** Sales this node has seen. */
  known(): Sale[] {
    return [...this.#sales.values()];
  }

  markSoldOut(saleId: number, now = Date.now()): void {
    this.#soldOutUntil.set(saleId, now + SOLD_OUT_TTL_MS);
  }

  /** Forgets the flag: a unit went back to sale through this node. */
  clearSoldOut(saleId: number): void {
    this.#soldOutUntil.delete(saleId);
  }

  isSoldOut(saleId: number, now = Date.now()): boolean {
    const until = this.#soldOutUntil.get(saleId);
    return until !== undefined && until > now;
  }
}

/** The buyer-facing state of a sale, given its remaining units. */
export function saleState(sale: Sale, remaining: number, now: number): SaleState {
  if (now < sale.startsAt) return 'upcoming';
  if (now >= sale.endsAt) return 'ended';
  return remaining <= 0 ? 'sold_out' : 'active';
}
