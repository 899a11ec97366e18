/**
 * Where the redis stock store keeps things. Every key of one sale carries the hash tag
 * `{sale:<id>}`, so Redis Cluster keeps a sale in one slot and its Lua scripts may touch all
 * of its keys; only the sale registry and the per-IP counters live outside any sale, and
 * every command on them names that one key alone (SADD/SMEMBERS, MULTI INCR+PEXPIRE of one
 * key), so nothing is ever CROSSSLOT on a cluster.
 */

/** The keys of one sale. */
export interface SaleKeys {
  /** Hash: `remaining`, `stock`, `epoch`. No epoch = not warmed (lost, paused, rebuilding). */
  readonly state: string;
  /** Hash: user id → order id, everyone who holds an order in the sale. */
  readonly buyers: string;
  /** Hash: order id → user id, for orders still in the queue. */
  readonly holders: string;
  /** Stream of accepted orders (`orderId`, `userId`, `createdAt`); consumer group of the writers. */
  readonly orders: string;
  /** Set: ids of orders whose unit went back to sale. */
  readonly released: string;
  /** Stream: poison entries with the reason they were given up on. */
  readonly dead: string;
}

/** Builds key names under one prefix; see the module comment for the layout. */
export class StockKeys {
  readonly #prefix: string;

  /** @param prefix - put in front of every key, e.g. `seckill:`. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Set of the ids of every sale ever warmed. */
  get registry(): string {
    return `${this.#prefix}sales`;
  }

  /** The keys of `saleId`. */
  sale(saleId: number): SaleKeys {
    const base = this.#saleBase(saleId);
    return {
      state: `${base}:state`,
      buyers: `${base}:buyers`,
      holders: `${base}:holders`,
      orders: `${base}:orders`,
      released: `${base}:released`,
      dead: `${base}:dead`,
    };
  }

  /** Hash of the reservation attempts in one sale during one second: user id → count. */
  attempts(saleId: number, second: number): string {
    return `${this.#saleBase(saleId)}:rl:${second}`;
  }

  /**
   * Where a warm-up loads buyers and released orders before swapping them in. Named after
   * the epoch so two warm-ups of one sale never load into each other's keys.
   */
  staging(saleId: number, epoch: string): { readonly buyers: string; readonly released: string } {
    const base = `${this.#saleBase(saleId)}:warming:${epoch}`;
    return { buyers: `${base}:buyers`, released: `${base}:released` };
  }

  /**
   * A short-lived key written only to give a connection a replication offset past what it
   * just read, so a `WAIT` on that connection covers it (see `RedisStockStore.reserve`).
   */
  durabilityMark(saleId: number): string {
    return `${this.#saleBase(saleId)}:durability-mark`;
  }

  /** Counter of one IP's requests during one second. */
  ipRequests(ip: string, second: number): string {
    return `${this.#prefix}rl:ip:${ip}:${second}`;
  }

  #saleBase(saleId: number): string {
    return `${this.#prefix}{sale:${saleId}}`;
  }
}
