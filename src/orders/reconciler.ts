import { randomUUID } from 'node:crypto';
import type { Sale, SeckillDatabase } from '../db/seckill-database.js';
import type { StockStore } from '../stock/stock-store.js';

/** How one sale's stock state compares with the database. */
export type SaleHealth = 'ok' | 'drift' | 'missing';

/** The reconciler's finding for one sale, and what it did about it. */
export interface SaleReconciliation {
  readonly saleId: number;
  readonly stock: number;
  /** Live orders (created + paid) in the database. */
  readonly persisted: number;
  /** Accepted orders still queued and not yet in the database. */
  readonly pending: number;
  /** stock − persisted − pending: what the stock store should hold. */
  readonly expected: number;
  /** What the stock store holds; null when its state is missing. */
  readonly remaining: number | null;
  /** The database's own `sold` counter; equal to `persisted` unless the database was edited by hand. */
  readonly sold: number;
  readonly health: SaleHealth;
  /** True when this run rebuilt the sale's stock state. */
  readonly repaired: boolean;
  readonly error?: string;
}

export interface ReconcileReport {
  readonly sales: readonly SaleReconciliation[];
  /** True when every sale is ok now (after repairs, if asked for). */
  readonly ok: boolean;
}

export interface ReconcileOptions {
  /** Rebuild sales that are missing or drifted. */
  readonly repair: boolean;
  /** Only these sales; all sales when absent. */
  readonly saleIds?: readonly number[];
  /**
   * Only sales whose state is missing: the others are neither counted nor reported (the
   * cheap check the writer role repeats); with repair, drifted ones are left to an operator.
   */
  readonly onlyMissing?: boolean;
  /** Only sales that have not ended at this time (ms). */
  readonly activeAt?: number;
  /**
   * Leave out sales created after this time (ms): the node that creates a sale warms it
   * itself a moment later, and a periodic repair that ran in between would pause the new
   * sale and answer its first buyers 503. A creator that died before warming leaves the
   * sale to the next run after this grace.
   */
  readonly createdBefore?: number;
}

/**
 * Compares every sale's stock state with the database (the source of truth, I5) and, when
 * asked, rebuilds it as `remaining = stock − persisted − pending`, never from configuration.
 * A rebuild first pauses the sale (it answers 503), so no purchase races the count.
 */
export class Reconciler {
  readonly #db: SeckillDatabase;
  readonly #store: StockStore;

  constructor(db: SeckillDatabase, store: StockStore) {
    this.#db = db;
    this.#store = store;
  }

  /** Checks (and with `repair`, rebuilds) sales; a failure on one sale is reported, not thrown. */
  async run(options: ReconcileOptions): Promise<ReconcileReport> {
    const all = await this.#db.listSales();
    const sales = all.filter(
      (s) =>
        (!options.saleIds || options.saleIds.includes(s.id)) &&
        (options.activeAt === undefined || s.endsAt > options.activeAt) &&
        (options.createdBefore === undefined || s.createdAt < options.createdBefore),
    );
    const results: SaleReconciliation[] = [];
    for (const sale of sales) {
      try {
        // The periodic repair of lost sales runs every few seconds during a sale: a present
        // state is left alone without counting the sale's orders (a scan of every order).
        if (options.onlyMissing && (await this.#store.snapshot(sale.id)) !== null) continue;
        let finding = await this.inspect(sale);
        const wanted = finding.health === 'missing' || (finding.health === 'drift' && !options.onlyMissing);
        if (options.repair && wanted) finding = await this.rebuild(sale);
        results.push(finding);
      } catch (err) {
        results.push({
          saleId: sale.id,
          stock: sale.stock,
          persisted: 0,
          pending: 0,
          expected: 0,
          remaining: null,
          sold: sale.sold,
          health: 'missing',
          repaired: false,
          error: (err as Error).message,
        });
      }
    }
    return { sales: results, ok: results.every((r) => r.health === 'ok' && !r.error) };
  }

  /** Reads one sale's state without changing anything. */
  async inspect(sale: Sale): Promise<SaleReconciliation> {
    const snapshot = await this.#store.snapshot(sale.id);
    const { persisted, pending, sold } = await this.#count(sale);
    const expected = sale.stock - persisted - pending;
    const remaining = snapshot ? snapshot.remaining : null;
    const health: SaleHealth = remaining === null ? 'missing' : remaining === expected ? 'ok' : 'drift';
    return { saleId: sale.id, stock: sale.stock, persisted, pending, expected, remaining, sold, health, repaired: false };
  }

  /** Pauses the sale, recounts, and warms its state from the database and the queue. */
  async rebuild(sale: Sale, now = Date.now()): Promise<SaleReconciliation> {
    await this.#store.pause(sale.id);
    const queued = await this.#store.queuedOrders(sale.id);
    const { persisted, pending, sold, persistedIds } = await this.#count(sale, queued);
    // Settled after counting: an order that ends in between was counted live, so its unit
    // is withheld rather than handed out twice.
    const released = await this.#db.settleEndedOrders(sale.id, now);
    const buyers = new Map<string, string>();
    for await (const batch of this.#db.saleBuyers(sale.id)) {
      for (const [userId, orderId] of batch) buyers.set(userId, orderId);
    }
    for (const order of queued) {
      if (!persistedIds.has(order.orderId) && !buyers.has(order.userId)) buyers.set(order.userId, order.orderId);
    }
    const expected = Math.max(0, sale.stock - persisted - pending);
    await this.#store.warm({
      saleId: sale.id,
      stock: sale.stock,
      remaining: expected,
      epoch: randomUUID(),
      buyers,
      released,
    });
    return {
      saleId: sale.id,
      stock: sale.stock,
      persisted,
      pending,
      expected,
      remaining: expected,
      sold,
      health: 'ok',
      repaired: true,
    };
  }

  /**
   * Live orders in the database and queued orders not yet there. The queue is read first:
   * an order the writer moves in between is then found in both and counted once.
   */
  async #count(sale: Sale, queuedIn?: Awaited<ReturnType<StockStore['queuedOrders']>>) {
    const queued = queuedIn ?? (await this.#store.queuedOrders(sale.id));
    const counts = await this.#db.countOrders(sale.id);
    const fresh = await this.#db.getSale(sale.id);
    const persistedIds = queued.length > 0 ? await this.#db.existingOrderIds(sale.id, queued.map((o) => o.orderId)) : new Set<string>();
    const pending = queued.filter((o) => !persistedIds.has(o.orderId)).length;
    return { persisted: counts.created + counts.paid, pending, sold: fresh?.sold ?? sale.sold, persistedIds };
  }
}
