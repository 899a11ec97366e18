import type { QueuedOrder } from '../stock-store.js';

/** One accepted order in a {@link SaleQueue}, with its delivery bookkeeping. */
interface QueueEntry {
  readonly entryId: string;
  readonly orderId: string;
  readonly userId: string;
  readonly createdAt: number;
  /** Who holds it now; null until first handed out. */
  consumer: string | null;
  deliveredAt: number;
  deliveries: number;
}

/**
 * The accepted-order queue of one sale, kept in process with the semantics of a Redis stream
 * read through a consumer group: entries are handed out once to one consumer, stay pending
 * until acknowledged, and are handed to another consumer once idle long enough.
 */
export class SaleQueue {
  readonly #saleId: number;
  /** Every entry, in entry-id order. */
  readonly #entries = new Map<string, QueueEntry>();
  readonly #byOrder = new Map<string, QueueEntry>();
  /** Entries never handed out, oldest first. */
  readonly #fresh = new Map<string, QueueEntry>();
  /** Entries handed out and not acknowledged, least recently handed out first. */
  readonly #pending = new Map<string, QueueEntry>();
  #lastMs = 0;
  #sequence = 0;

  /** @param saleId - the sale whose orders this queue holds. */
  constructor(saleId: number) {
    this.#saleId = saleId;
  }

  /** Accepted orders not yet acknowledged. */
  get size(): number {
    return this.#entries.size;
  }

  /** Appends an order, with an id shaped like a stream entry id (`<ms>-<seq>`), and returns the id. */
  add(orderId: string, userId: string, createdAt: number, now: number): string {
    // Like Redis: ids keep increasing even if the clock steps back.
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#sequence = 0;
    } else {
      this.#sequence += 1;
    }
    const entryId = `${this.#lastMs}-${this.#sequence}`;
    const entry: QueueEntry = { entryId, orderId, userId, createdAt, consumer: null, deliveredAt: 0, deliveries: 0 };
    this.#entries.set(entryId, entry);
    this.#byOrder.set(orderId, entry);
    this.#fresh.set(entryId, entry);
    return entryId;
  }

  /**
   * Hands `consumer` up to `count` entries: first those idle at least `claimIdleMs` since they
   * were last handed out (whoever holds them), then never-delivered ones.
   */
  take(consumer: string, count: number, claimIdleMs: number, now: number): QueuedOrder[] {
    const taken: QueuedOrder[] = [];
    for (const entry of this.#pending.values()) {
      if (taken.length >= count || now - entry.deliveredAt < claimIdleMs) break;
      taken.push(this.#deliver(entry, consumer, now));
    }
    for (const entry of this.#fresh.values()) {
      if (taken.length >= count) break;
      this.#fresh.delete(entry.entryId);
      taken.push(this.#deliver(entry, consumer, now));
    }
    return taken;
  }

  /** Removes an entry; returns it, or undefined when it was not queued. */
  remove(entryId: string): QueuedOrder | undefined {
    const entry = this.#entries.get(entryId);
    if (!entry) return undefined;
    this.#entries.delete(entryId);
    this.#byOrder.delete(entry.orderId);
    this.#fresh.delete(entryId);
    this.#pending.delete(entryId);
    return this.#toQueuedOrder(entry);
  }

  /** The user of `orderId` while its order is queued, else undefined. */
  userOf(orderId: string): string | undefined {
    return this.#byOrder.get(orderId)?.userId;
  }

  /** Every queued order, in entry-id order. */
  orders(): QueuedOrder[] {
    return Array.from(this.#entries.values(), (entry) => this.#toQueuedOrder(entry));
  }

  #deliver(entry: QueueEntry, consumer: string, now: number): QueuedOrder {
    entry.consumer = consumer;
    entry.deliveredAt = now;
    entry.deliveries += 1;
    // Re-inserting keeps #pending ordered by delivery time, so `take` can stop at the first busy entry.
    this.#pending.delete(entry.entryId);
    this.#pending.set(entry.entryId, entry);
    return this.#toQueuedOrder(entry);
  }

  #toQueuedOrder(entry: QueueEntry): QueuedOrder {
    const { entryId, orderId, userId, createdAt, deliveries } = entry;
    return { entryId, saleId: this.#saleId, orderId, userId, createdAt, deliveries };
  }
}
