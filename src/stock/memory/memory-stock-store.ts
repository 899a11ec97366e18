import { ReleaseCode, ReserveCode } from '../stock-store.js';
import type {
  QueuedOrder,
  QueueEntryRef,
  ReserveRequest,
  ReserveResult,
  SaleStockSnapshot,
  SaleWarmup,
  StockStore,
} from '../stock-store.js';
import { checkWarmup } from '../warmup-check.js';
import { PerSecondCounter } from './per-second-counter.js';
import { SaleQueue } from './sale-queue.js';

/** Options of {@link MemoryStockStore}. */
export interface MemoryStockStoreOptions {
  /** How long {@link MemoryStockStore.awaitDurable} waits for the writer before answering false. Default 5000. */
  readonly durableTimeoutMs?: number;
}

interface MemorySale {
  stock: number;
  remaining: number;
  /** Null when paused: the sale refuses purchases until warmed again. */
  epoch: string | null;
  buyers: Map<string, string>;
  released: Set<string>;
  readonly queue: SaleQueue;
  readonly attempts: PerSecondCounter;
  /** Poison entries given up on, with the reason. */
  readonly dead: Map<string, QueuedOrder & { readonly reason: string }>;
}

type DurableWaiter = (durable: boolean) => void;

/**
 * The stock store of the embedded mode: everything in one process, atomic by construction
 * because each method changes its state without awaiting in between.
 *
 * The in-process order writer drains the queue into SQLite and acknowledges; that
 * acknowledgement is what {@link MemoryStockStore.awaitDurable} waits for, so the embedded
 * mode answers a purchase only once the database has the order.
 *
 * @example
 * ```ts
 * const store = new MemoryStockStore({ durableTimeoutMs: 2000 });
 * const stop = store.onEnqueue(() => writer.wake());
 * ```
 */
export class MemoryStockStore implements StockStore {
  readonly kind = 'memory';
  readonly #options: Required<MemoryStockStoreOptions>;
  readonly #sales = new Map<number, MemorySale>();
  readonly #ipRequests = new PerSecondCounter();
  /** Callers of awaitDurable by `<saleId>:<orderId>`. */
  readonly #waiters = new Map<string, Set<DurableWaiter>>();
  readonly #enqueueListeners = new Set<() => void>();
  #notifyScheduled = false;
  #readTurn = 0;

  /** @param options - see {@link MemoryStockStoreOptions}. */
  constructor(options: MemoryStockStoreOptions = {}) {
    const durableTimeoutMs = options.durableTimeoutMs ?? 5000;
    if (!Number.isFinite(durableTimeoutMs) || durableTimeoutMs < 0) {
      throw new RangeError(`durableTimeoutMs (${durableTimeoutMs}) must be a number of milliseconds ≥ 0`);
    }
    this.#options = Object.freeze({ durableTimeoutMs });
  }

  /**
   * Calls `listener` after orders were queued, at most once per microtask however many were,
   * so the in-process writer can sleep instead of polling. Returns a function that unsubscribes.
   */
  onEnqueue(listener: () => void): () => void {
    this.#enqueueListeners.add(listener);
    return () => this.#enqueueListeners.delete(listener);
  }

  async warm(warmup: SaleWarmup): Promise<void> {
    const checked = checkWarmup(warmup);
    const sale = this.#sales.get(checked.saleId) ?? this.#newSale(checked.saleId);
    sale.stock = checked.stock;
    sale.remaining = checked.remaining;
    sale.buyers = new Map(checked.buyers);
    // Queued orders are kept, and their users stay buyers even if the list missed them.
    for (const order of sale.queue.orders()) {
      if (!sale.buyers.has(order.userId)) sale.buyers.set(order.userId, order.orderId);
    }
    sale.released = new Set(checked.released);
    sale.epoch = checked.epoch;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const sale = this.#sales.get(request.saleId);
    if (!sale || sale.epoch === null) return { code: ReserveCode.NotWarmed };
    if (request.perUserLimit > 0 && sale.attempts.increment(request.userId, request.now) > request.perUserLimit) {
      return { code: ReserveCode.RateLimited };
    }
    // After the rate limit, as in the Redis script: within the limit a retry gets its order back.
    const existing = sale.buyers.get(request.userId);
    if (existing !== undefined) return { code: ReserveCode.Duplicate, orderId: existing };
    if (sale.remaining <= 0) return { code: ReserveCode.SoldOut };
    sale.remaining -= 1;
    sale.buyers.set(request.userId, request.orderId);
    sale.queue.add(request.orderId, request.userId, request.now, Date.now());
    this.#notifyEnqueued();
    return { code: ReserveCode.Reserved, orderId: request.orderId };
  }

  /**
   * Resolves true once the order's queue entry is acknowledged (the writer committed it), at
   * once if it is no longer queued; false if it was dead-lettered, the wait timed out or the
   * store closed.
   */
  awaitDurable(saleId: number, orderId: string): Promise<boolean> {
    const sale = this.#sales.get(saleId);
    if (!sale || sale.queue.userOf(orderId) === undefined) {
      return Promise.resolve(!sale?.dead.has(orderId));
    }
    const key = `${saleId}:${orderId}`;
    return new Promise<boolean>((resolve) => {
      const waiters = this.#waiters.get(key) ?? new Set<DurableWaiter>();
      const waiter: DurableWaiter = (durable) => {
        clearTimeout(timer);
        resolve(durable);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        if (waiters.size === 0) this.#waiters.delete(key);
        resolve(false);
      }, this.#options.durableTimeoutMs);
      waiters.add(waiter);
      this.#waiters.set(key, waiters);
    });
  }

  async release(saleId: number, orderId: string): Promise<ReleaseCode> {
    const sale = this.#sales.get(saleId);
    if (!sale || sale.epoch === null) return ReleaseCode.NotWarmed;
    if (sale.released.has(orderId)) return ReleaseCode.AlreadyReleased;
    sale.released.add(orderId);
    sale.remaining += 1;
    return ReleaseCode.Released;
  }

  async snapshot(saleId: number): Promise<SaleStockSnapshot | null> {
    const sale = this.#sales.get(saleId);
    if (!sale || sale.epoch === null) return null;
    return { remaining: sale.remaining, epoch: sale.epoch, pending: sale.queue.size };
  }

  async pause(saleId: number): Promise<void> {
    const sale = this.#sales.get(saleId);
    if (sale) sale.epoch = null;
  }

  async buyerCount(saleId: number): Promise<number> {
    return this.#sales.get(saleId)?.buyers.size ?? 0;
  }

  async *buyers(saleId: number): AsyncIterable<readonly string[]> {
    const users = [...(this.#sales.get(saleId)?.buyers.keys() ?? [])];
    for (let i = 0; i < users.length; i += 1000) yield users.slice(i, i + 1000);
  }

  async findQueued(saleId: number, orderId: string): Promise<string | null> {
    return this.#sales.get(saleId)?.queue.userOf(orderId) ?? null;
  }

  async queuedOrders(saleId: number): Promise<QueuedOrder[]> {
    return this.#sales.get(saleId)?.queue.orders() ?? [];
  }

  async saleIds(): Promise<number[]> {
    return [...this.#sales.keys()].sort((a, b) => a - b);
  }

  async readOrders(
    consumer: string,
    saleIds: readonly number[],
    count: number,
    claimIdleMs: number,
  ): Promise<QueuedOrder[]> {
    const taken: QueuedOrder[] = [];
    if (saleIds.length === 0) return taken;
    // Start at a different sale each call so one busy sale cannot starve the others.
    const start = this.#readTurn++ % saleIds.length;
    const now = Date.now();
    for (let i = 0; i < saleIds.length && taken.length < count; i++) {
      const sale = this.#sales.get(saleIds[(start + i) % saleIds.length]);
      if (sale) taken.push(...sale.queue.take(consumer, count - taken.length, claimIdleMs, now));
    }
    return taken;
  }

  async ackOrders(saleId: number, entries: readonly QueueEntryRef[]): Promise<void> {
    const sale = this.#sales.get(saleId);
    if (!sale) return;
    // The entry id alone finds the order here; the order id is for stores that cannot look it up cheaply.
    for (const { entryId } of entries) {
      const order = sale.queue.remove(entryId);
      if (order) this.#settle(saleId, order.orderId, true);
    }
  }

  async deadLetter(order: QueuedOrder, reason: string): Promise<void> {
    const sale = this.#sales.get(order.saleId);
    const removed = sale?.queue.remove(order.entryId);
    if (!sale || !removed) return;
    sale.dead.set(removed.orderId, { ...order, reason });
    this.#settle(order.saleId, removed.orderId, false);
  }

  async allowIp(ip: string, limit: number, now: number): Promise<boolean> {
    return limit <= 0 || this.#ipRequests.increment(ip, now) <= limit;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  /** Answers every pending {@link awaitDurable} with false: nothing will acknowledge them now. */
  async close(): Promise<void> {
    for (const waiters of this.#waiters.values()) {
      for (const waiter of waiters) waiter(false);
    }
    this.#waiters.clear();
    this.#enqueueListeners.clear();
  }

  #newSale(saleId: number): MemorySale {
    const sale: MemorySale = {
      stock: 0,
      remaining: 0,
      epoch: null,
      buyers: new Map(),
      released: new Set(),
      queue: new SaleQueue(saleId),
      attempts: new PerSecondCounter(),
      dead: new Map(),
    };
    this.#sales.set(saleId, sale);
    return sale;
  }

  #settle(saleId: number, orderId: string, durable: boolean): void {
    const key = `${saleId}:${orderId}`;
    const waiters = this.#waiters.get(key);
    if (!waiters) return;
    this.#waiters.delete(key);
    for (const waiter of waiters) waiter(durable);
  }

  #notifyEnqueued(): void {
    if (this.#notifyScheduled || this.#enqueueListeners.size === 0) return;
    this.#notifyScheduled = true;
    // Not inside reserve: a throwing listener must not turn an accepted order into an error.
    queueMicrotask(() => {
      this.#notifyScheduled = false;
      for (const listener of this.#enqueueListeners) listener();
    });
  }
}
