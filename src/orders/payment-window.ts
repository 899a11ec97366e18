import type { Logger } from 'pino';
import type { SeckillDatabase } from '../db/seckill-database.js';
import type { SeckillMetrics } from '../ops/metrics.js';
import { ReleaseCode } from '../stock/stock-store.js';
import type { StockStore } from '../stock/stock-store.js';
import type { SaleCatalog } from './sale-catalog.js';

const BATCH = 1000;

/** What one sweep did. */
export interface SweepResult {
  readonly expired: number;
  readonly released: number;
}

/**
 * Enforces the payment window and gives units back: unpaid orders past their window expire
 * (freeing their unit in the database's `sold`), then every ended order whose unit the
 * stock store has not yet taken back is released there. Both steps are idempotent and the
 * second is driven by `released_at` in the database, so a crash between them only delays
 * the release to the next sweep; it never loses or doubles a unit (invariant I4).
 */
export class PaymentWindow {
  readonly #db: SeckillDatabase;
  readonly #store: StockStore;
  readonly #catalog: SaleCatalog;
  readonly #metrics: SeckillMetrics;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> | undefined;

  constructor(db: SeckillDatabase, store: StockStore, catalog: SaleCatalog, metrics: SeckillMetrics, log: Logger, intervalMs: number) {
    this.#db = db;
    this.#store = store;
    this.#catalog = catalog;
    this.#metrics = metrics;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    const tick = (): void => {
      this.#sweeping = this.sweep()
        .catch((err: unknown) => this.#log.warn({ err }, 'payment window: sweep failed; retrying next interval'))
        .finally(() => {
          if (this.#timer) this.#timer = setTimeout(tick, this.#intervalMs);
        });
    };
    this.#timer = setTimeout(tick, this.#intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sweeping;
  }

  /** Expires what is due and releases what is ended; returns the counts. */
  async sweep(now = Date.now()): Promise<SweepResult> {
    let expired = 0;
    for (;;) {
      const n = await this.#db.expireDue(now, BATCH);
      expired += n;
      if (n < BATCH) break;
    }
    this.#metrics.ordersExpired.inc(expired);
    const released = await this.releaseEnded(now);
    return { expired, released };
  }

  /** Gives the units of ended orders back to the stock store, once each. */
  async releaseEnded(now = Date.now()): Promise<number> {
    let released = 0;
    for (;;) {
      const ended = await this.#db.unreleasedOrders(BATCH);
      const done: string[] = [];
      for (const order of ended) {
        const code = await this.#store.release(order.saleId, order.orderId);
        if (code === ReleaseCode.NotWarmed) continue; // the reconciler accounts for it when it rebuilds the sale
        if (code === ReleaseCode.Released) {
          released++;
          this.#catalog.clearSoldOut(order.saleId);
        }
        done.push(order.orderId);
      }
      if (done.length > 0) await this.#db.markReleased(done, now);
      if (ended.length < BATCH || done.length === 0) break;
    }
    this.#metrics.unitsReleased.inc(released);
    return released;
  }
}
