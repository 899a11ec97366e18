import { LIVE_STATUSES } from '../../db/seckill-database.js';
import type { SaleSnapshot } from '../backup-manifest.js';

/** Row counts per table and the per-sale snapshot of one dump, as its manifest records them. */
export interface DumpCensus {
  readonly rowCounts: Readonly<Record<string, number>>;
  readonly sales: readonly SaleSnapshot[];
}

const LIVE = new Set<string>(LIVE_STATUSES);

/**
 * Adds up the rows a dump parser meets: every table's count, and for the two tables the
 * flash-sale invariants live in, the columns the sale snapshot needs (stock and sold of each
 * sale; live orders per sale).
 */
export class CensusTally {
  readonly #counts = new Map<string, number>();
  readonly #sales = new Map<number, { stock: number; sold: number }>();
  readonly #liveOrders = new Map<number, number>();

  /** Counts one row of `table` (several for `n`). */
  row(table: string, n = 1): void {
    this.#counts.set(table, (this.#counts.get(table) ?? 0) + n);
  }

  /** Makes a table appear in the counts even when the dump holds no row of it. */
  table(table: string): void {
    if (!this.#counts.has(table)) this.#counts.set(table, 0);
  }

  /** A row of `sales`. */
  sale(id: number, stock: number, sold: number): void {
    this.#sales.set(id, { stock, sold });
  }

  /** A row of `orders`. */
  order(saleId: number, status: string): void {
    if (LIVE.has(status)) this.#liveOrders.set(saleId, (this.#liveOrders.get(saleId) ?? 0) + 1);
  }

  result(): DumpCensus {
    const rowCounts = Object.fromEntries([...this.#counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const sales = [...this.#sales]
      .sort(([a], [b]) => a - b)
      .map(([saleId, { stock, sold }]) => ({ saleId, stock, sold, liveOrders: this.#liveOrders.get(saleId) ?? 0 }));
    return { rowCounts, sales };
  }
}
