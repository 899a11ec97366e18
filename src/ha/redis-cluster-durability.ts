import type { Cluster, Redis } from 'ioredis';
import { keySlot } from './redis-cluster-slot.js';

/**
 * Proves an order present on its master made it to a replica: on the master's own
 * connection, checks the buyer's order is there and writes a mark after it (so the
 * connection has a write past the order in the master's replication stream), then `WAIT 1`.
 */
const CONFIRM_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', 60000)
return 1`;

interface NodeWaits {
  /** The next `WAIT` on this node, not sent yet, that new waiters join. */
  next: Promise<number> | null;
  /** The `WAIT` on the wire, if any. */
  inFlight: Promise<unknown> | null;
}

/**
 * `durability: replica` on a Redis Cluster. `WAIT` only counts the writes of its own
 * connection, and a cluster client holds one connection per master, so it must go to the
 * master owning the sale's slot, on the very connection the proof was written on.
 *
 * Rather than tracking which connection carried each reservation (the slot may have moved
 * since), each confirmation writes a small mark on the owning master, in a script that first
 * checks the buyer's order is in that master's data. A replica acknowledging an offset past
 * the mark has the master's data as of the mark, order included. If the connection
 * reconnected between the mark and the `WAIT`'s answer, the `WAIT` proves nothing and the
 * answer is false. Callers joining while a `WAIT` is on the wire share the next one (group
 * commit per master): a waiting `WAIT` holds up every later command on that connection.
 */
export class ClusterReplicaWaiter {
  readonly #cluster: Cluster;
  readonly #timeoutMs: number;
  /** Times each node connection became ready since this waiter first saw it. */
  readonly #readyCounts = new WeakMap<Redis, number>();
  readonly #waits = new WeakMap<Redis, NodeWaits>();

  /** @param replicaTimeoutMs - how long each `WAIT` waits for a replica. */
  constructor(cluster: Cluster, replicaTimeoutMs: number) {
    this.#cluster = cluster;
    this.#timeoutMs = replicaTimeoutMs;
  }

  /**
   * True when a replica of the master that owns `buyersKey`'s slot has `userId`'s order
   * `orderId` (looked up in the buyers hash `buyersKey`), confirmed within the replica timeout.
   * False when the order is not on that master, no replica confirmed in time, the master is
   * unreachable or answered MOVED, or its connection changed meanwhile. Never throws.
   *
   * @param markKey - a key in the same slot, written to give the connection a write to wait for.
   */
  async confirm(buyersKey: string, markKey: string, userId: string, orderId: string): Promise<boolean> {
    const node = this.#masterOf(buyersKey);
    if (!node || node.status !== 'ready') return false;
    const connection = this.#readyCount(node);
    try {
      const present = await node.eval(CONFIRM_LUA, 2, buyersKey, markKey, userId, orderId);
      if (present !== 1) return false;
      const replicas = await this.#joinNextWait(node);
      return replicas >= 1 && this.#readyCount(node) === connection;
    } catch {
      return false;
    }
  }

  /** The connection to the master that owns `key`'s slot in the client's current slot map. */
  #masterOf(key: string): Redis | undefined {
    const owner = this.#cluster.slots[keySlot(key)]?.[0];
    if (owner === undefined) return undefined;
    return this.#cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === owner);
  }

  #readyCount(node: Redis): number {
    let count = this.#readyCounts.get(node);
    if (count === undefined) {
      count = 0;
      this.#readyCounts.set(node, 0);
      node.on('ready', () => this.#readyCounts.set(node, (this.#readyCounts.get(node) ?? 0) + 1));
    }
    return count;
  }

  #joinNextWait(node: Redis): Promise<number> {
    let waits = this.#waits.get(node);
    if (!waits) {
      waits = { next: null, inFlight: null };
      this.#waits.set(node, waits);
    }
    if (waits.next) return waits.next;
    const state = waits;
    const previous = state.inFlight ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => {
        // From here on, new callers may have written after this WAIT is sent: they need the next one.
        state.next = null;
        const sent = node.call('WAIT', 1, this.#timeoutMs) as Promise<number>;
        state.inFlight = sent;
        return sent.finally(() => {
          if (state.inFlight === sent) state.inFlight = null;
        });
      });
    state.next = next;
    return next;
  }
}
