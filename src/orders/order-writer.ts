import type { Logger } from 'pino';
import type { SeckillDatabase } from '../db/seckill-database.js';
import type { SeckillMetrics } from '../ops/metrics.js';
import type { QueuedOrder, StockStore } from '../stock/stock-store.js';
import type { SaleCatalog } from './sale-catalog.js';

export interface OrderWriterOptions {
  /** This writer's name in the consumer group; stable names let a restarted writer be recognised. */
  readonly consumer: string;
  readonly batchSize: number;
  readonly claimIdleMs: number;
  /** Pause between reads when the queue was empty. */
  readonly idleMs?: number;
  /** After this many deliveries an entry that still fails is dead-lettered. */
  readonly maxDeliveries?: number;
}

/** What one pass of the writer did. */
export interface DrainResult {
  readonly read: number;
  readonly persisted: number;
  readonly replayed: number;
  readonly rejected: number;
  readonly deadLettered: number;
  readonly failed: number;
}

// A new sale's first orders wait at most this long to be noticed by a writer on another node.
const SALE_LIST_REFRESH_MS = 100;
const MAX_BACKOFF_MS = 2000;

/**
 * Drains accepted orders from the stock store's queue into the database: one transaction
 * per sale per batch (guarded `sold` update and multi-row insert), acknowledged only after
 * commit, so a crash replays the batch and the replay is a no-op. A database that is down
 * is a pause, not a loss: the batch is kept and retried with backoff.
 */
export class OrderWriter {
  readonly #db: SeckillDatabase;
  readonly #store: StockStore;
  readonly #catalog: SaleCatalog;
  readonly #metrics: SeckillMetrics;
  readonly #log: Logger;
  readonly #options: Required<OrderWriterOptions>;
  #saleIds: number[] = [];
  #saleIdsAt = 0;
  /** Entries read but not yet committed; retried before anything new is read. */
  #carry: QueuedOrder[] = [];
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #failures = 0;

  constructor(
    db: SeckillDatabase,
    store: StockStore,
    catalog: SaleCatalog,
    metrics: SeckillMetrics,
    log: Logger,
    options: OrderWriterOptions,
  ) {
    this.#db = db;
    this.#store = store;
    this.#catalog = catalog;
    this.#metrics = metrics;
    this.#log = log;
    this.#options = Object.freeze({ idleMs: 10, maxDeliveries: 5, ...options });
  }

  /** Starts the background loop. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Wakes an idle loop at once (the in-process store calls this when it enqueues). */
  nudge(): void {
    this.#wake?.();
  }

  /** Stops after the batch in hand is committed (or given up for another writer to claim). */
  async stop(): Promise<void> {
    this.#running = false;
    this.nudge();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let result: DrainResult | undefined;
      try {
        result = await this.drainOnce();
      } catch (err) {
        this.#metrics.writerErrors.inc();
        this.#log.warn({ err }, 'order writer: reading the queue failed; retrying');
        this.#failures++;
      }
      if (result && result.failed === 0) this.#failures = 0;
      else if (result) this.#failures++;
      const wait = this.#failures > 0
        ? Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(this.#failures - 1, 6))
        : result && result.read > 0 ? 0 : this.#options.idleMs;
      if (wait > 0 && this.#running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      } else if (this.#running) {
        // Let the event loop breathe between full batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /**
   * One pass: read a batch (or retry the one kept from a failed pass), write it sale by sale,
   * acknowledge what the database now holds.
   */
  async drainOnce(now = Date.now()): Promise<DrainResult> {
    let batch = this.#carry;
    if (batch.length === 0) {
      if (now - this.#saleIdsAt > SALE_LIST_REFRESH_MS || this.#saleIds.length === 0) {
        this.#saleIds = await this.#store.saleIds();
        this.#saleIdsAt = now;
      }
      if (this.#saleIds.length === 0) return { read: 0, persisted: 0, replayed: 0, rejected: 0, deadLettered: 0, failed: 0 };
      batch = await this.#store.readOrders(this.#options.consumer, this.#saleIds, this.#options.batchSize, this.#options.claimIdleMs);
    }
    const bySale = new Map<number, QueuedOrder[]>();
    for (const order of batch) {
      const list = bySale.get(order.saleId);
      if (list) list.push(order);
      else bySale.set(order.saleId, [order]);
    }
    const carry: QueuedOrder[] = [];
    let persisted = 0;
    let replayed = 0;
    let rejected = 0;
    let deadLettered = 0;
    for (const [saleId, orders] of bySale) {
      try {
        const sale = await this.#catalog.get(saleId);
        if (!sale) {
          for (const order of orders) await this.#store.deadLetter(order, `sale ${saleId} is not in the database`);
          deadLettered += orders.length;
          this.#metrics.ordersDeadLettered.inc(orders.length);
          continue;
        }
        const result = await this.#db.persistOrders(
          saleId,
          orders.map((o) => ({ orderId: o.orderId, userId: o.userId, createdAt: o.createdAt })),
          sale.paymentWindowSeconds,
        );
        await this.#store.ackOrders(saleId, orders.map((o) => o.entryId));
        persisted += result.inserted.length;
        replayed += result.replayed.length;
        rejected += result.rejected.length;
        this.#metrics.ordersPersisted.inc(result.inserted.length);
        for (const r of result.rejected) this.#metrics.ordersRejected.inc({ reason: r.reason });
        if (result.rejected.length > 0) {
          this.#log.warn({ saleId, rejected: result.rejected.length }, 'order writer: the database refused orders the stock store accepted');
        }
        const oldest = Math.min(...orders.map((o) => o.createdAt));
        this.#metrics.writerLagSeconds.set(Math.max(0, Date.now() - oldest) / 1000);
      } catch (err) {
        this.#metrics.writerErrors.inc();
        this.#log.warn({ err, saleId, orders: orders.length }, 'order writer: writing a batch failed; it stays queued and is retried');
        const suspects = orders.some((o) => o.deliveries >= this.#options.maxDeliveries);
        if (suspects && (await this.#db.ping().catch(() => false))) {
          const isolated = await this.#isolatePoison(saleId, orders);
          persisted += isolated.persisted;
          deadLettered += isolated.deadLettered;
          carry.push(...isolated.carry);
        } else {
          carry.push(...orders);
        }
      }
    }
    this.#carry = carry;
    return { read: batch.length, persisted, replayed, rejected, deadLettered, failed: carry.length };
  }

  /**
   * A batch with often-delivered entries failed while the database answers: write its
   * orders one at a time, and dead-letter the often-delivered ones that still fail. During
   * a database outage this is never reached, so nothing valid is dead-lettered then.
   */
  async #isolatePoison(saleId: number, orders: readonly QueuedOrder[]): Promise<{ persisted: number; deadLettered: number; carry: QueuedOrder[] }> {
    const sale = await this.#catalog.get(saleId);
    let persisted = 0;
    let deadLettered = 0;
    const carry: QueuedOrder[] = [];
    for (const order of orders) {
      try {
        const result = await this.#db.persistOrders(saleId, [{ orderId: order.orderId, userId: order.userId, createdAt: order.createdAt }], sale!.paymentWindowSeconds);
        await this.#store.ackOrders(saleId, [order.entryId]);
        persisted += result.inserted.length;
        this.#metrics.ordersPersisted.inc(result.inserted.length);
      } catch (err) {
        if (order.deliveries >= this.#options.maxDeliveries) {
          await this.#store.deadLetter(order, (err as Error).message);
          this.#metrics.ordersDeadLettered.inc();
          this.#log.error({ err, orderId: order.orderId }, 'order writer: dead-lettered an entry that keeps failing');
          deadLettered++;
        } else {
          carry.push(order);
        }
      }
    }
    return { persisted, deadLettered, carry };
  }
}
