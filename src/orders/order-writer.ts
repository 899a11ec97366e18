import type { Logger } from 'pino';
import type { SeckillDatabase } from '../db/seckill-database.js';
import type { SeckillMetrics } from '../ops/metrics.js';
import type { QueuedOrder, StockStore } from '../stock/stock-store.js';
import { DatabaseCircuit } from './database-circuit.js';
import type { SaleCatalog } from './sale-catalog.js';

export interface OrderWriterOptions {
  /** This writer's name in the consumer group; stable names let a restarted writer be recognised. */
  readonly consumer: string;
  readonly batchSize: number;
  readonly claimIdleMs: number;
  /**
   * Pause between reads when the queue was empty; it doubles while the queue stays empty,
   * up to `maxIdleMs`, so an idle writer polls Redis a few times a second rather than a
   * hundred (measured: about 5 % of a busy API process's CPU went to idle polling).
   */
  readonly idleMs?: number;
  readonly maxIdleMs?: number;
  /**
   * Pause after a batch that was not full, so the next one gathers more orders: one
   * transaction and one acknowledgement then carry many orders instead of a few, which
   * is most of a writer's cost per order. Adds at most this much to persistence latency.
   */
  readonly lingerMs?: number;
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

/** Orders of one sale that the database now holds, still to be acknowledged in the queue. */
interface Committed {
  readonly saleId: number;
  readonly orders: readonly QueuedOrder[];
}

/** What writing one batch to the database did. */
interface Written {
  readonly persisted: number;
  readonly replayed: number;
  readonly rejected: number;
  readonly deadLettered: number;
  /** Committed (or found already committed): acknowledge these. */
  readonly committed: readonly Committed[];
  /** Not committed: kept and retried. */
  readonly failed: readonly QueuedOrder[];
}

const NOTHING_WRITTEN: Written = { persisted: 0, replayed: 0, rejected: 0, deadLettered: 0, committed: [], failed: [] };

/**
 * Drains accepted orders from the stock store's queue into the database: one transaction
 * per sale per batch (guarded `sold` update and multi-row insert), acknowledged only after
 * commit, so a crash replays the batch and the replay is a no-op. A database that is down
 * is a pause, not a loss: the batch is kept and retried with backoff.
 *
 * The background loop overlaps the three steps, because each waits on a different process
 * (Redis, the database) and done in turn they left the writer idle most of the time: while
 * batch N is written to the database, batch N+1 is read (when N was full, so more is
 * waiting) and batch N−1 is acknowledged. One batch is written at a time, and at most one
 * read ahead and one acknowledgement are in flight, so a stalled database holds at most
 * about three batches in memory and reads nothing new until they are committed.
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
  /** Entries read but not yet committed and acknowledged; retried before anything new is read. */
  #carry: QueuedOrder[] = [];
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Whether the loop is waiting on an empty queue (a nudge then means work has come). */
  #idle = false;
  /** Empty reads in a row, for the growing idle pause. */
  #emptyReads = 0;
  #failures = 0;
  readonly #circuit: DatabaseCircuit;

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
    this.#options = Object.freeze({ idleMs: 10, maxIdleMs: 100, lingerMs: 20, maxDeliveries: 5, ...options });
    this.#circuit = new DatabaseCircuit(db, log, { onChange: (open) => metrics.writerCircuitOpen.set(open ? 1 : 0) });
  }

  /** Starts the background loop. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Wakes a loop idle on an empty queue at once (the in-process store calls this when it enqueues). */
  nudge(): void {
    if (this.#idle) this.#wake?.();
  }

  /**
   * Stops after the batch in hand, and the one already read ahead, are committed and
   * acknowledged (or, if that fails, given up for another writer to claim).
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    /** The next batch, read while the one before it is written. */
    let ahead: Promise<QueuedOrder[]> | undefined;
    /** Acknowledgement of the batch before, running while this one is written; resolves to how many entries it failed on. */
    let acking: Promise<number> = Promise.resolve(0);
    while (this.#running || ahead) {
      if (ahead && this.#carry.length > 0) {
        // A retry goes first, and the batch read ahead joins it rather than waiting apart:
        // nothing more is read until the retry is committed.
        this.#carry.push(...(await ahead.catch((err: unknown) => this.#readFailed(err))));
        ahead = undefined;
      }
      // Stopping: entries that failed stay pending for another writer (or this one, restarted) to claim.
      if (!this.#running && this.#carry.length > 0) break;
      const retrying = this.#carry.length > 0;
      let batch: QueuedOrder[] = [];
      let readFailed = false;
      if (retrying) {
        batch = this.#carry;
        this.#carry = [];
      } else {
        const readAhead = ahead;
        ahead = undefined;
        try {
          batch = readAhead ? await readAhead : await this.#read(Date.now());
          // Read ahead before the last batch was written: orders may have come since.
          if (readAhead && batch.length === 0 && this.#running) batch = await this.#read(Date.now());
        } catch (err) {
          readFailed = true;
          this.#readFailed(err);
        }
      }
      // A full batch means more is waiting: read it while this one is written.
      if (this.#running && !retrying && batch.length >= this.#options.batchSize) {
        const next = this.#read(Date.now());
        // Its failure is reported where it is awaited; until then it must not count as unhandled.
        next.catch(() => undefined);
        ahead = next;
      }
      const written = batch.length > 0 ? await this.#write(batch) : NOTHING_WRITTEN;
      // One acknowledgement in flight at a time; it runs while the next batch is written.
      const ackFailed = await acking;
      acking = this.#acknowledge(written.committed);
      this.#carry.push(...written.failed);

      if (readFailed || written.failed.length > 0 || ackFailed > 0) this.#failures++;
      else this.#failures = 0;
      // A batch that failed as a whole is the database's doing; one that committed proves it works.
      if (written.committed.length > 0) this.#circuit.succeeded();
      else if (written.failed.length > 0) this.#circuit.failed(written.failed.length);
      const wait = this.#failures > 0
        ? Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(this.#failures - 1, 6))
        : batch.length === 0 ? Math.min(this.#options.maxIdleMs, this.#options.idleMs * 2 ** Math.min(this.#emptyReads, 10))
        : batch.length < this.#options.batchSize ? this.#options.lingerMs
        : 0;
      this.#idle = this.#failures === 0 && batch.length === 0;
      this.#emptyReads = batch.length === 0 ? this.#emptyReads + 1 : 0;
      if (this.#circuit.open && this.#running) {
        // Batches are held back: the database is probed until it answers, then the batch
        // kept in #carry goes first as the trial.
        await this.#circuit.untilWorthTrying(() => this.#running, (wake) => (this.#wake = wake));
        this.#wake = undefined;
      } else if (wait > 0 && this.#running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
        this.#idle = false;
      } else if (this.#running) {
        // Let the event loop breathe between full batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await acking;
    // Left unwritten when stopping during a retry: pending in the group until claimed.
    await ahead?.catch(() => undefined);
  }

  /** Reports a failed read. Whatever it delivered stays pending and is claimed once idle. */
  #readFailed(err: unknown): QueuedOrder[] {
    this.#metrics.writerErrors.inc();
    this.#log.warn({ err }, 'order writer: reading the queue failed; retrying');
    return [];
  }

  /**
   * One pass, without overlap: read a batch (or retry the entries kept from a failed pass),
   * write it sale by sale, acknowledge what the database now holds.
   */
  async drainOnce(now = Date.now()): Promise<DrainResult> {
    const batch = this.#carry.length > 0 ? this.#carry.splice(0) : await this.#read(now);
    const written = batch.length > 0 ? await this.#write(batch) : NOTHING_WRITTEN;
    const ackFailed = await this.#acknowledge(written.committed);
    this.#carry.push(...written.failed);
    const { persisted, replayed, rejected, deadLettered } = written;
    return { read: batch.length, persisted, replayed, rejected, deadLettered, failed: written.failed.length + ackFailed };
  }

  /** New entries of every known sale, refreshing the list of sales now and then. */
  async #read(now: number): Promise<QueuedOrder[]> {
    if (now - this.#saleIdsAt > SALE_LIST_REFRESH_MS || this.#saleIds.length === 0) {
      this.#saleIds = await this.#store.saleIds();
      this.#saleIdsAt = now;
    }
    if (this.#saleIds.length === 0) return [];
    return this.#store.readOrders(this.#options.consumer, this.#saleIds, this.#options.batchSize, this.#options.claimIdleMs);
  }

  /**
   * Writes a batch to the database, one transaction per sale. Acknowledging is left to the
   * caller ({@link OrderWriter.#acknowledge}), except for entries settled one by one while
   * isolating a poison entry.
   */
  async #write(batch: readonly QueuedOrder[]): Promise<Written> {
    const bySale = new Map<number, QueuedOrder[]>();
    for (const order of batch) {
      const list = bySale.get(order.saleId);
      if (list) list.push(order);
      else bySale.set(order.saleId, [order]);
    }
    const committed: Committed[] = [];
    const failed: QueuedOrder[] = [];
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
        committed.push({ saleId, orders });
        persisted += result.inserted.length;
        replayed += result.replayed.length;
        rejected += result.rejected.length;
        this.#metrics.ordersPersisted.inc(result.inserted.length);
        for (const r of result.rejected) this.#metrics.ordersRejected.inc({ reason: r.reason });
        if (result.rejected.length > 0) {
          this.#log.warn({ saleId, rejected: result.rejected.length }, 'order writer: the database refused orders the stock store accepted');
        }
        let oldest = Infinity;
        for (const order of orders) oldest = Math.min(oldest, order.createdAt);
        this.#metrics.writerLagSeconds.set(Math.max(0, Date.now() - oldest) / 1000);
      } catch (err) {
        this.#metrics.writerErrors.inc();
        this.#log.warn({ err, saleId, orders: orders.length }, 'order writer: writing a batch failed; it stays queued and is retried');
        const suspects = orders.some((o) => o.deliveries >= this.#options.maxDeliveries);
        if (suspects && (await this.#db.ping().catch(() => false))) {
          const isolated = await this.#isolatePoison(saleId, orders);
          persisted += isolated.persisted;
          deadLettered += isolated.deadLettered;
          failed.push(...isolated.carry);
        } else {
          failed.push(...orders);
        }
      }
    }
    return { persisted, replayed, rejected, deadLettered, committed, failed };
  }

  /**
   * Acknowledges committed entries. Entries whose acknowledgement fails are kept and go
   * through the database again, where they are replays and change nothing, then are
   * acknowledged again. Never rejects; resolves to how many entries it failed on.
   */
  async #acknowledge(committed: readonly Committed[]): Promise<number> {
    if (committed.length === 0) return 0;
    const failed = await Promise.all(
      committed.map(async ({ saleId, orders }) => {
        try {
          await this.#store.ackOrders(saleId, orders);
          return 0;
        } catch (err) {
          this.#metrics.writerErrors.inc();
          this.#log.warn({ err, saleId, orders: orders.length }, 'order writer: acknowledging a committed batch failed; it is retried (a no-op replay)');
          this.#carry.push(...orders);
          return orders.length;
        }
      }),
    );
    return failed.reduce((a, b) => a + b, 0);
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
        await this.#store.ackOrders(saleId, [order]);
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
