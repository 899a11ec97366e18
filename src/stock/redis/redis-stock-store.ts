import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../../ha/redis-client.js';
import { ClusterReplicaWaiter } from '../../ha/redis-cluster-durability.js';
import { RedisConnection } from '../../ha/redis-connection.js';
import { describeRedisEndpoint, parseRedisUrl } from '../../ha/redis-url.js';
import type {
  QueuedOrder,
  QueueEntryRef,
  ReleaseCode,
  ReserveRequest,
  ReserveResult,
  SaleStockSnapshot,
  SaleWarmup,
  StockStore,
} from '../stock-store.js';
import { ReserveCode } from '../stock-store.js';
import { checkWarmup } from '../warmup-check.js';
import { ReserveBatcher } from './reserve-batcher.js';
import { StockKeys } from './stock-keys.js';
import { StockScripts, toQueuedOrder } from './stock-scripts.js';

/**
 * When a reservation counts as durable: `leader` once the Redis primary has it, `replica`
 * once at least one replica confirmed it too (`WAIT 1`), which survives a failover.
 */
export type Durability = 'leader' | 'replica';

/** Options of {@link RedisStockStore}. */
export interface RedisStockStoreOptions {
  /** Put in front of every key. Default `seckill:`. */
  readonly keyPrefix?: string;
  /** Default `leader`. */
  readonly durability?: Durability;
  /** How long `WAIT` waits for a replica with `durability: replica`. Default 250; must be below commandTimeoutMs. */
  readonly replicaTimeoutMs?: number;
  /** Fail a command not answered within this time. Default 1000. Applies to clients this store creates. */
  readonly commandTimeoutMs?: number;
  /** How long {@link RedisStockStore.connect} waits for the connection. Default 10000. */
  readonly connectTimeoutMs?: number;
  /**
   * ioredis `enableAutoPipelining` for clients this store creates. Default false: ioredis keeps
   * only one auto-pipeline in flight and queues everything else behind it, and with 64
   * concurrent buyers on loopback reserve ran ~20–35% slower with it than with commands
   * streamed as they come (which Redis pipelines anyway). Measure before turning it on.
   */
  readonly autoPipelining?: boolean;
}

type ResolvedOptions = Required<RedisStockStoreOptions>;

/** Consumer group of the order writers on every sale's orders stream. */
const WRITERS_GROUP = 'writers';
/** Buyers or released orders sent per command while warming a large sale. */
const WARM_CHUNK = 1000;
/** An abandoned warm-up's staged keys disappear after this. */
const STAGING_TTL_MS = 10 * 60_000;
/** Stream entries read per command when listing a queue. */
const QUEUE_PAGE = 1000;
/**
 * Most rounds of {@link RedisStockStore.readOrders}. Each round costs a round trip; a batch
 * still short after these is handed out as it is (the next read continues).
 */
const MAX_READ_ROUNDS = 4;
/** Longest wait between two looks for a dead writer's idle entries of a sale (see #readSale). */
const MAX_IDLE_CHECK_INTERVAL_MS = 1000;
/** Reservations remembered for `durability: replica` until awaited; the oldest are forgotten first. */
const MAX_UNCONFIRMED = 65_536;
/** WAITs the writer tries before it gives up on a batch no replica confirms (see #confirmRead). */
const READ_CONFIRM_ATTEMPTS = 3;

/**
 * The stock store over Redis (ioredis). Each operation that changes a sale is one Lua script
 * over the sale's keys (see `stock-keys.ts` for the layout), so it is atomic, and works on
 * Redis Cluster because all keys of a sale share one hash tag; reads that need no atomicity
 * (the writer's plain `XREADGROUP`, `HLEN`/`HSCAN` of the buyers) are single-key commands. The few keys outside any sale (the sale
 * registry, per-IP counters) are only ever touched one key per command, so every command and
 * script of this store has its keys in one slot. With `durability: replica` the `WAIT` goes to
 * the master that owns the sale's slot.
 *
 * Clients this store creates fail fast instead of queueing: no offline queue, no retries,
 * a command timeout. Calls made while Redis is unreachable reject at once, and
 * {@link RedisStockStore.ping} answers false.
 *
 * @example
 * ```ts
 * const store = await RedisStockStore.connect('redis://127.0.0.1:6379/0', { durability: 'replica' });
 * // or through Sentinel, following failovers:
 * const ha = await RedisStockStore.connect('redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/seckill');
 * // or on a Redis Cluster, sales spread over its masters by their {sale:<id>} tag:
 * const sharded = await RedisStockStore.connect('redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000');
 * ```
 */
export class RedisStockStore implements StockStore {
  readonly kind = 'redis';
  /** The client in use; replaced by {@link RedisConnection} when an owned client ends unexpectedly. */
  #client!: RedisClient;
  /** Set when this store made its client from a URL (and so owns, heals and closes it). */
  readonly #owned: RedisConnection | undefined;
  readonly #options: ResolvedOptions;
  readonly #keys: StockKeys;
  #scripts!: StockScripts;
  /** Counts connections made ready: a `WAIT` only covers writes made on its own connection. */
  #connection = 0;
  readonly #onReady = (): void => {
    this.#connection += 1;
  };
  /** Connection each reservation was made on, by `<saleId>:<orderId>`, until awaited. */
  readonly #unconfirmed = new Map<string, number>();
  /** On a cluster with `durability: replica`: confirms on the sale's master (see {@link ClusterReplicaWaiter}). */
  #clusterWaiter: ClusterReplicaWaiter | undefined;
  /** On a cluster: the buyer of each reservation, by `<saleId>:<orderId>`, until awaited. */
  readonly #unconfirmedBuyers = new Map<string, string>();
  /** The next `WAIT`, not sent yet, that new waiters join. */
  #nextWait: Promise<{ readonly replicas: number; readonly connection: number }> | null = null;
  /** The `WAIT` on the wire, if any. */
  #waitInFlight: Promise<unknown> | null = null;
  #readTurn = 0;
  /** When this process last looked for a dead writer's idle entries, by sale (see #readSale). */
  readonly #idleCheckedAt = new Map<number, number>();
  /** The token of this process's latest pause of each sale, until its warm-up uses it. */
  readonly #pauseTokens = new Map<number, string>();
  /** Sends the reservations of a sale that arrive together as one script call. */
  readonly #batcher = new ReserveBatcher((saleId, requests) => this.#reserveBatch(saleId, requests));

  /**
   * Creates a store and waits until Redis answers.
   *
   * @param connection - a `redis://host:port/db`, `redis-sentinel://…` or `redis-cluster://…` URL (see
   *   `src/ha/redis-url.ts`), or a client (which the caller keeps owning).
   * @throws when Redis cannot be reached within `connectTimeoutMs`.
   */
  static async connect(connection: string | RedisClient, options: RedisStockStoreOptions = {}): Promise<RedisStockStore> {
    const store = new RedisStockStore(connection, options);
    try {
      await store.#whenReady(typeof connection === 'string' ? connection : undefined);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Prefer {@link RedisStockStore.connect}: a store made here from a URL connects in the
   * background and refuses calls until connected.
   *
   * @param connection - a `redis://host:port/db`, `redis-sentinel://…` or `redis-cluster://…` URL, or a client (which the caller keeps owning).
   * @throws {RedisUrlError} when the URL cannot be read.
   */
  constructor(connection: string | RedisClient, options: RedisStockStoreOptions = {}) {
    this.#options = resolveOptions(options);
    const clientTimeout =
      typeof connection === 'string'
        ? this.#options.commandTimeoutMs
        : connection instanceof Cluster
          ? connection.options.redisOptions?.commandTimeout
          : connection.options.commandTimeout;
    if (this.#options.durability === 'replica' && clientTimeout !== undefined && this.#options.replicaTimeoutMs >= clientTimeout) {
      throw new RangeError(
        `replicaTimeoutMs (${this.#options.replicaTimeoutMs}) must be below the client's command timeout (${clientTimeout}): ` +
          'otherwise WAIT times out as a failed command; lower replicaTimeoutMs or raise commandTimeoutMs',
      );
    }
    this.#keys = new StockKeys(this.#options.keyPrefix);
    if (typeof connection === 'string') {
      this.#owned = new RedisConnection(parseRedisUrl(connection), {
        commandTimeoutMs: this.#options.commandTimeoutMs,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        autoPipelining: this.#options.autoPipelining,
      });
      this.#owned.onClient((client) => this.#adopt(client));
    } else {
      this.#owned = undefined;
      this.#adopt(connection);
    }
  }

  /**
   * How many times the client this store owns ended unexpectedly and was replaced (the
   * ioredis failover defect, see `src/ha/redis-connection.ts`); 0 for a client passed in.
   */
  get clientReplacements(): number {
    return this.#owned?.replacements ?? 0;
  }

  /**
   * Pauses the sale (unless this process paused it with {@link RedisStockStore.pause} since
   * its last warm-up: then the counts were taken under that pause), loads buyers and released
   * orders in chunks under staging keys, then swaps them in and sets the epoch in one script.
   * If it fails half-way the sale stays paused (refusing purchases) until a warm-up succeeds:
   * a half-loaded sale never sells.
   *
   * Several writer processes may rebuild the same lost sale at once. Only the warm-up of the
   * process that paused it last lands: its counts were taken while nobody could sell. An
   * earlier one would swap in a remaining count that misses what was sold after another
   * rebuild finished, and sell those units twice.
   *
   * @throws Error `STALE_WARMUP …` when another process paused the sale after this one; nothing
   *   was changed, and that process's warm-up is the one that counts.
   */
  async warm(warmup: SaleWarmup): Promise<void> {
    const checked = checkWarmup(warmup);
    const keys = this.#keys.sale(checked.saleId);
    const staging = this.#keys.staging(checked.saleId, checked.epoch);
    await this.#client.sadd(this.#keys.registry, checked.saleId);
    // Paused from the first chunk on: buyers still loading must not be able to buy again.
    const token = this.#pauseTokens.get(checked.saleId) ?? (await this.#pauseWithToken(checked.saleId));
    this.#pauseTokens.delete(checked.saleId);
    await this.#client.del(staging.buyers, staging.released);
    for (let i = 0; i < checked.buyers.length; i += WARM_CHUNK) {
      const chunk = checked.buyers.slice(i, i + WARM_CHUNK).flat();
      await Promise.all([this.#client.hset(staging.buyers, ...chunk), this.#client.pexpire(staging.buyers, STAGING_TTL_MS)]);
    }
    for (let i = 0; i < checked.released.length; i += WARM_CHUNK) {
      const chunk = checked.released.slice(i, i + WARM_CHUNK);
      await Promise.all([this.#client.sadd(staging.released, ...chunk), this.#client.pexpire(staging.released, STAGING_TTL_MS)]);
    }
    await this.#scripts.warm(keys, staging, checked, WRITERS_GROUP, token);
  }

  /**
   * Reservations of one sale made during the same turn of the event loop go to Redis as one
   * script call (see {@link ReserveBatcher}); each still gets its own result.
   */
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const result = await this.#batcher.reserve(request);
    if (this.#options.durability !== 'replica') return result;
    const keys = this.#keys.sale(request.saleId);
    if (this.#clusterWaiter) {
      if (result.code === ReserveCode.Reserved) this.#rememberBuyer(`${request.saleId}:${request.orderId}`, request.userId);
      if (result.code === ReserveCode.Duplicate) {
        // The same rule as #confirmExisting: a retry gets no 2xx for an order no replica has.
        const confirmed = await this.#clusterWaiter.confirm(keys.buyers, this.#keys.durabilityMark(request.saleId), request.userId, result.orderId!);
        if (!confirmed) throw new Error(`order ${result.orderId} of sale ${request.saleId} is not confirmed by a Redis replica yet; retry`);
      }
      return result;
    }
    if (result.code === ReserveCode.Reserved) {
      this.#rememberUnconfirmed(`${request.saleId}:${request.orderId}`);
    }
    if (result.code === ReserveCode.Duplicate) {
      await this.#confirmExisting(request.saleId, result.orderId!);
    }
    return result;
  }

  #reserveBatch(saleId: number, requests: readonly ReserveRequest[]): Promise<ReserveResult[]> {
    const attempts = this.#keys.attempts(saleId, Math.floor(requests[0].now / 1000));
    return this.#scripts.reserve(this.#keys.sale(saleId), requests, attempts);
  }

  /**
   * With `durability: replica`, a buyer's retry must not get a 2xx for an order no replica
   * has: the first attempt may have been answered 503 because `WAIT` returned 0 (a primary
   * cut off from its replica, e.g. frozen and thawed after a failover), and that order
   * vanishes if this primary is demoted. The order may have been written on another
   * connection (another API node), and `WAIT` only covers writes of its own connection, so
   * this connection first writes a mark (after the order, in the replication stream), then
   * waits for a replica to have it.
   *
   * @throws when no replica confirms in time; the caller answers 503 and the buyer retries.
   */
  async #confirmExisting(saleId: number, orderId: string): Promise<void> {
    await this.#client.set(this.#keys.durabilityMark(saleId), orderId, 'PX', 60_000);
    this.#rememberUnconfirmed(`${saleId}:${orderId}`);
    if (!(await this.awaitDurable(saleId, orderId))) {
      throw new Error(`order ${orderId} of sale ${saleId} is not confirmed by a Redis replica yet; retry`);
    }
  }

  /**
   * `leader`: true at once. `replica`: true when a replica confirmed the reservation within
   * `replicaTimeoutMs`; false when none did, or the connection changed since the reservation
   * (a `WAIT` on a new connection proves nothing about writes made on the old one).
   * On a cluster, the `WAIT` goes to the master owning the sale's slot ({@link ClusterReplicaWaiter}).
   */
  async awaitDurable(saleId: number, orderId: string): Promise<boolean> {
    if (this.#options.durability === 'leader') return true;
    const key = `${saleId}:${orderId}`;
    if (this.#clusterWaiter) {
      const userId = this.#unconfirmedBuyers.get(key);
      this.#unconfirmedBuyers.delete(key);
      if (userId === undefined) return false;
      return this.#clusterWaiter.confirm(this.#keys.sale(saleId).buyers, this.#keys.durabilityMark(saleId), userId, orderId);
    }
    const madeOn = this.#unconfirmed.get(key) ?? this.#connection;
    this.#unconfirmed.delete(key);
    try {
      const { replicas, connection } = await this.#joinNextWait();
      return replicas >= 1 && connection === madeOn;
    } catch {
      return false;
    }
  }

  release(saleId: number, orderId: string): Promise<ReleaseCode> {
    return this.#scripts.release(this.#keys.sale(saleId), orderId);
  }

  /**
   * On a cluster, a sale found present is also (re)added to the sale registry. The registry
   * is one key on one master; if that master alone loses its data, the sales on the other
   * masters are intact (so never rebuilt, which would register them) but unlisted, and the
   * order writers, which drain the listed sales only, would leave their queues untouched.
   * The periodic reconcile snapshots every active sale, so it puts them back within one
   * interval. Best effort: a registry master that is down must not fail other sales' snapshots.
   */
  async snapshot(saleId: number): Promise<SaleStockSnapshot | null> {
    const keys = this.#keys.sale(saleId);
    const client = this.#client;
    const replies = await client.multi().hmget(keys.state, 'remaining', 'epoch').xlen(keys.orders).exec();
    if (client instanceof Cluster && replies?.[0]?.[1] && (replies[0][1] as (string | null)[])[1] !== null) {
      await client.sadd(this.#keys.registry, saleId).catch(() => undefined);
    }
    if (!replies) throw new Error(`snapshot of sale ${saleId}: the transaction was aborted; retry`);
    const [[stateError, state], [lengthError, length]] = replies as [[Error | null, (string | null)[]], [Error | null, number]];
    if (stateError ?? lengthError) throw stateError ?? lengthError;
    const [remaining, epoch] = state;
    if (remaining === null || epoch === null) return null;
    return { remaining: Number(remaining), epoch, pending: length };
  }

  /**
   * Takes the sale's epoch away (purchases answer NotWarmed) and marks the state with a new
   * pause token, which the next {@link RedisStockStore.warm} of this process presents.
   */
  async pause(saleId: number): Promise<void> {
    this.#pauseTokens.set(saleId, await this.#pauseWithToken(saleId));
  }

  async #pauseWithToken(saleId: number): Promise<string> {
    const token = randomUUID();
    const state = this.#keys.sale(saleId).state;
    const replies = await this.#client.multi().hdel(state, 'epoch').hset(state, 'rebuilding', token).exec();
    const failed = replies?.find(([error]) => error)?.[0];
    if (!replies || failed) throw failed ?? new Error(`pausing sale ${saleId}: the transaction was aborted; retry`);
    return token;
  }

  buyerCount(saleId: number): Promise<number> {
    return this.#client.hlen(this.#keys.sale(saleId).buyers);
  }

  async *buyers(saleId: number): AsyncIterable<readonly string[]> {
    const key = this.#keys.sale(saleId).buyers;
    let cursor = '0';
    do {
      const [next, fieldsAndValues] = await this.#client.hscan(key, cursor, 'COUNT', 1000);
      cursor = next;
      const users: string[] = new Array(fieldsAndValues.length / 2);
      for (let i = 0; i < users.length; i++) users[i] = fieldsAndValues[2 * i];
      if (users.length > 0) yield users;
    } while (cursor !== '0');
  }

  findQueued(saleId: number, orderId: string): Promise<string | null> {
    return this.#client.hget(this.#keys.sale(saleId).holders, orderId);
  }

  async queuedOrders(saleId: number): Promise<QueuedOrder[]> {
    const stream = this.#keys.sale(saleId).orders;
    const deliveries = await this.#deliveriesOf(stream);
    const orders: QueuedOrder[] = [];
    for (let start = '-'; ; ) {
      const page = await this.#client.xrange(stream, start, '+', 'COUNT', QUEUE_PAGE);
      for (const [entryId, fields] of page) {
        orders.push(toQueuedOrder(saleId, entryId, deliveries.get(entryId) ?? 0, fields));
      }
      if (page.length < QUEUE_PAGE) return orders;
      start = `(${page[page.length - 1][0]}`;
    }
  }

  async saleIds(): Promise<number[]> {
    const ids = await this.#client.smembers(this.#keys.registry);
    return ids.map(Number).sort((a, b) => a - b);
  }

  /**
   * Up to `count` entries of one sale for `consumer`. Most reads are a plain `XREADGROUP`:
   * passing a thousand entries through `read-2.lua` cost Redis twice as much per entry
   * (measured 8–13 µs against 6), for converting the reply to Lua and back. The script,
   * which first takes over entries a dead writer left idle, runs instead when this sale's
   * were last looked for at least half of `minIdleMs` ago (at most a second), and whenever
   * the group is missing (it recreates it, or waits for a warm-up of a lost sale). So a
   * dead writer's entries are taken over within `minIdleMs` plus that interval, first in
   * the read that finds them, as before.
   */
  async #readSale(saleId: number, consumer: string, count: number, minIdleMs: number, now: number): Promise<QueuedOrder[]> {
    const keys = this.#keys.sale(saleId);
    const lastCheck = this.#idleCheckedAt.get(saleId);
    if (lastCheck === undefined || now - lastCheck >= Math.min(minIdleMs / 2, MAX_IDLE_CHECK_INTERVAL_MS)) {
      this.#idleCheckedAt.set(saleId, now);
      return this.#scripts.read(saleId, keys, WRITERS_GROUP, consumer, count, minIdleMs);
    }
    let reply: [string, [string, string[]][]][] | null;
    try {
      reply = (await this.#client.xreadgroup('GROUP', WRITERS_GROUP, consumer, 'COUNT', count, 'STREAMS', keys.orders, '>')) as typeof reply;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('NOGROUP')) throw error;
      this.#idleCheckedAt.set(saleId, now);
      return this.#scripts.read(saleId, keys, WRITERS_GROUP, consumer, count, minIdleMs);
    }
    const entries = reply?.[0]?.[1] ?? [];
    const orders: QueuedOrder[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) orders[i] = toQueuedOrder(saleId, entries[i][0], 1, entries[i][1]);
    return orders;
  }

  /**
   * Reads in rounds of one call per sale, each round's calls sent at once (one round
   * trip, and valid on Redis Cluster, where sales live in different slots). The first round
   * shares `count` evenly among the sales, so every sale with entries gets its share however
   * busy the others are. Each later round shares what is still missing among the sales that
   * filled their share (the others are empty for now), so a drained sale's share goes to the
   * busy ones instead of shrinking the batch. No sale is asked for more than it may hand
   * out, so nothing is left delivered to this consumer without being returned (it would sit
   * unprocessed until claimed as idle). A sale whose stream or group is gone and that has no
   * epoch yields nothing until it is warmed again.
   */
  async readOrders(
    consumer: string,
    saleIds: readonly number[],
    count: number,
    claimIdleMs: number,
  ): Promise<QueuedOrder[]> {
    const minIdleMs = Math.max(0, claimIdleMs);
    const turn = this.#readTurn++;
    const readOn = this.#connection;
    const taken: QueuedOrder[] = [];
    let candidates = [...new Set(saleIds)];
    for (let round = 0; round < MAX_READ_ROUNDS && candidates.length > 0 && taken.length < count; round++) {
      const quotas = shareOut(count - taken.length, candidates.length, turn);
      const now = Date.now();
      const reads = candidates.map((saleId, i) => (quotas[i] > 0 ? this.#readSale(saleId, consumer, quotas[i], minIdleMs, now) : undefined));
      const replies = await Promise.all(reads);
      const more: number[] = [];
      replies.forEach((reply, i) => {
        if (reply) taken.push(...reply);
        // Not asked this round (no share left for it), or it gave all it was asked: it may hold more.
        if (!reply || reply.length >= quotas[i]) more.push(candidates[i]);
      });
      candidates = more;
    }
    if (taken.length > 0 && this.#options.durability === 'replica' && !this.#clusterWaiter) await this.#confirmRead(readOn);
    return taken;
  }

  /**
   * With `durability: replica`, the writer must not put into the database an order that no
   * replica holds: were this primary lost, the promoted replica would not know the unit was
   * taken and would sell it again, and the database, full, would then refuse an order that
   * was acknowledged (seen once in the chaos suite: 62 units sold twice, 124 acknowledged
   * orders refused). Replication is one ordered stream, so a `WAIT` after the read covers
   * every order it returned. Tried a few times (a replica busy with a sync answers late);
   * when none confirms, the read fails: the entries stay delivered to this writer, and are
   * read again once they have been idle `claimIdleMs`.
   */
  async #confirmRead(readOn: number): Promise<void> {
    for (let attempt = 0; attempt < READ_CONFIRM_ATTEMPTS; attempt++) {
      try {
        const { replicas, connection } = await this.#joinNextWait();
        if (connection !== readOn) break;
        if (replicas >= 1) return;
      } catch {
        // A failed WAIT confirms nothing; try again.
      }
    }
    throw new Error('the orders read from the queue are not on a Redis replica yet; they stay queued and are read again');
  }

  async ackOrders(saleId: number, entries: readonly QueueEntryRef[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#scripts.ack(this.#keys.sale(saleId), WRITERS_GROUP, entries);
  }

  async deadLetter(order: QueuedOrder, reason: string): Promise<void> {
    await this.#scripts.deadLetter(this.#keys.sale(order.saleId), WRITERS_GROUP, order, reason);
  }

  async allowIp(ip: string, limit: number, now: number): Promise<boolean> {
    if (limit <= 0) return true;
    const key = this.#keys.ipRequests(ip, Math.floor(now / 1000));
    // Outlives its second so small clock differences between API nodes cannot reset a count.
    const replies = await this.#client.multi().incr(key).pexpire(key, 2000).exec();
    const [error, requests] = replies?.[0] ?? [new Error('transaction aborted'), 0];
    if (error) throw error;
    return (requests as number) <= limit;
  }

  /** Answers false, within the command timeout at worst, when Redis does not answer. */
  async ping(): Promise<boolean> {
    const client = this.#client;
    if (client.status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(resolve, this.#options.commandTimeoutMs, 'timeout');
    });
    // On a cluster every master must answer: PING goes to one node at random, and a ready
    // answer that depends on which node was picked would flap while one shard is down.
    const pong =
      client instanceof Cluster
        ? Promise.all(client.nodes('master').map((node) => node.ping())).then((replies) =>
            replies.length > 0 && replies.every((reply) => reply === 'PONG') ? 'PONG' : 'no master',
          )
        : client.ping();
    try {
      return (await Promise.race([pong, timeout])) === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection if this store opened it; a client passed in stays open. */
  async close(): Promise<void> {
    this.#client.off('ready', this.#onReady);
    await this.#owned?.close();
  }

  /**
   * Sends everything on `client` from now on: registers the Lua scripts on it (a new client
   * knows no script; NOSCRIPT after a failover is handled by `defineCommand`) and counts its
   * connections, so a `WAIT` on it never vouches for writes made on an earlier client.
   */
  #adopt(client: RedisClient): void {
    this.#client?.off('ready', this.#onReady);
    this.#client = client;
    this.#scripts = new StockScripts(client);
    this.#clusterWaiter =
      client instanceof Cluster && this.#options.durability === 'replica'
        ? new ClusterReplicaWaiter(client, this.#options.replicaTimeoutMs)
        : undefined;
    // A new client is a new connection even before it is ready.
    this.#connection += 1;
    client.on('ready', this.#onReady);
  }

  async #whenReady(url: string | undefined): Promise<void> {
    const client = this.#client;
    if (client.status === 'ready') return;
    if (client.status === 'end') throw new Error('the Redis client given to the stock store was closed; pass an open one');
    if (client.status === 'wait') void client.connect().catch(() => undefined);
    let lastError: Error | undefined;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        client.off('ready', onReady).off('error', onError).off('end', onEnd).off('sentinelError', onError);
        if (error) reject(error);
        else resolve();
      };
      const onReady = (): void => settle();
      const onError = (error: Error): void => {
        lastError = error;
      };
      const where = url === undefined ? 'Redis' : `Redis at ${describeRedisEndpoint(parseRedisUrl(url))}`;
      const because = (): string => (lastError ? ` (last error: ${lastError.message})` : '');
      const onEnd = (): void => settle(new Error(`${where} closed the connection before it was ready${because()}`));
      const timer = setTimeout(
        () =>
          settle(
            new Error(
              `could not connect to ${where} within ${this.#options.connectTimeoutMs} ms${because()}; ` +
                'check that Redis runs and redisUrl points to it, or raise connectTimeoutMs',
            ),
          ),
        this.#options.connectTimeoutMs,
      );
      client.on('ready', onReady).on('error', onError).on('end', onEnd);
      // Sentinel mode: why a Sentinel could not name the primary (down, or a wrong master name).
      client.on('sentinelError', onError);
    });
  }

  /**
   * Group commit for `WAIT`: one `WAIT` covers every write its connection made before it, so
   * callers join the next one instead of each sending their own. Only one is on the wire at a
   * time, because a waiting `WAIT` holds up every later command on the connection.
   */
  #joinNextWait(): Promise<{ readonly replicas: number; readonly connection: number }> {
    if (this.#nextWait) return this.#nextWait;
    const previous = this.#waitInFlight ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => {
        // From here on, new callers may have written after this WAIT is sent: they need the next one.
        this.#nextWait = null;
        const connection = this.#connection;
        const sent = this.#client.call('WAIT', 1, this.#options.replicaTimeoutMs) as Promise<number>;
        this.#waitInFlight = sent;
        return sent
          .then((replicas) => ({ replicas, connection }))
          .finally(() => {
            if (this.#waitInFlight === sent) this.#waitInFlight = null;
          });
      });
    this.#nextWait = next;
    return next;
  }

  #rememberBuyer(key: string, userId: string): void {
    if (this.#unconfirmedBuyers.size >= MAX_UNCONFIRMED) {
      // A caller that never awaits durability must not grow this without bound.
      const oldest = this.#unconfirmedBuyers.keys().next().value;
      if (oldest !== undefined) this.#unconfirmedBuyers.delete(oldest);
    }
    this.#unconfirmedBuyers.set(key, userId);
  }

  #rememberUnconfirmed(key: string): void {
    if (this.#unconfirmed.size >= MAX_UNCONFIRMED) {
      // A caller that never awaits durability must not grow this without bound.
      const oldest = this.#unconfirmed.keys().next().value;
      if (oldest !== undefined) this.#unconfirmed.delete(oldest);
    }
    this.#unconfirmed.set(key, this.#connection);
  }

  /** Delivery counts of the entries writers hold, by entry id; empty when the group is gone. */
  async #deliveriesOf(stream: string): Promise<Map<string, number>> {
    const deliveries = new Map<string, number>();
    for (let start = '-'; ; ) {
      let page: [string, string, number, number][];
      try {
        page = (await this.#client.xpending(stream, WRITERS_GROUP, start, '+', QUEUE_PAGE)) as typeof page;
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('NOGROUP')) return deliveries;
        throw error;
      }
      for (const [entryId, , , count] of page) deliveries.set(entryId, count);
      if (page.length < QUEUE_PAGE) return deliveries;
      start = `(${page[page.length - 1][0]}`;
    }
  }
}

function resolveOptions(options: RedisStockStoreOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    keyPrefix: options.keyPrefix ?? 'seckill:',
    durability: options.durability ?? 'leader',
    replicaTimeoutMs: options.replicaTimeoutMs ?? 250,
    commandTimeoutMs: options.commandTimeoutMs ?? 1000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    autoPipelining: options.autoPipelining ?? false,
  };
  if (resolved.durability !== 'leader' && resolved.durability !== 'replica') {
    throw new RangeError(`durability must be 'leader' or 'replica', not ${JSON.stringify(resolved.durability)}`);
  }
  for (const name of ['replicaTimeoutMs', 'commandTimeoutMs', 'connectTimeoutMs'] as const) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] <= 0) {
      throw new RangeError(`${name} (${resolved[name]}) must be a whole number of milliseconds above 0`);
    }
  }
  return Object.freeze(resolved);
}

/**
 * Splits `count` among `parts` as evenly as possible; the remainder goes to a different part
 * each `turn`, so with fewer units than parts every part still gets its turn.
 */
function shareOut(count: number, parts: number, turn: number): number[] {
  if (parts === 0 || count <= 0) return [];
  const base = Math.floor(count / parts);
  const extra = count % parts;
  return Array.from({ length: parts }, (_, i) => base + ((((i - turn) % parts) + parts) % parts < extra ? 1 : 0));
}
