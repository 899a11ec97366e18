import type { Logger } from 'pino';
import { redactUrl } from '../config/config.js';
import type { DatabaseBackend } from './dialects/database-backend.js';
import { KyselyDatabase } from './kysely-database.js';
import { openDatabaseBackend } from './open-database.js';
import { replicationLagMs } from './replication-lag.js';
import type { Order, Sale, SeckillDatabase } from './seckill-database.js';

/** The reads that may be answered a little stale, and so may go to a replica. */
export interface StaleReads {
  getSale(id: number): Promise<Sale | undefined>;
  getOrder(orderId: string): Promise<Order | undefined>;
}

/** One replica as the router last saw it. */
export interface ReplicaState {
  /** The replica's URL without its password. */
  readonly url: string;
  /** Lag at the last probe; undefined when it is not applying changes or did not answer. */
  readonly lagMs: number | undefined;
  /** Whether reads go to it now: probed recently, and lag within the limit. */
  readonly usable: boolean;
}

/** Options of {@link ReplicaReads}. */
export interface ReplicaReadsOptions {
  /** Most lag a replica may have and still serve reads. */
  readonly maxLagMs: number;
  /** How often each replica's lag is measured. Default 500 ms. */
  readonly probeIntervalMs?: number;
  /** Counts each read by where it was answered, for the metrics. */
  readonly onRead?: (target: 'replica' | 'primary') => void;
}

interface Replica {
  readonly url: string;
  readonly backend: DatabaseBackend;
  readonly db: SeckillDatabase;
  lagMs: number | undefined;
  /** When the last successful probe ended (performance.now()). */
  probedAt: number;
}

/** How many probe intervals a measurement stays valid: a replica that stops answering probes stops serving. */
const PROBE_VALIDITY = 3;

/**
 * Sends the reads that may be stale to replicas and everything else to the primary. Each
 * replica's lag is measured every `probeIntervalMs` from the server's own replication
 * status; a replica serves only while that lag is within `maxLagMs` and was measured
 * within the last few intervals. Otherwise, and whenever a replica fails a read, the
 * primary answers.
 *
 * A row a replica does not have (yet) is asked of the primary too, so "not found" is
 * never a replica's word: a buyer's new order or a sale just created is visible at once.
 */
export class ReplicaReads implements StaleReads {
  readonly #primary: SeckillDatabase;
  readonly #replicas: Replica[];
  readonly #options: Required<Omit<ReplicaReadsOptions, 'onRead'>> & Pick<ReplicaReadsOptions, 'onRead'>;
  readonly #log: Logger | undefined;
  #timer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;
  #next = 0;

  private constructor(primary: SeckillDatabase, replicas: Replica[], options: ReplicaReadsOptions, log: Logger | undefined) {
    this.#primary = primary;
    this.#replicas = replicas;
    this.#options = { probeIntervalMs: 500, ...options };
    this.#log = log;
  }

  /**
   * Opens a small pool to each replica URL and starts probing them. Connections are lazy:
   * a replica that is down only makes its probes fail (and the primary answer).
   */
  static async open(primary: SeckillDatabase, urls: readonly string[], options: ReplicaReadsOptions, log?: Logger): Promise<ReplicaReads> {
    const replicas = urls.map((url) => {
      const backend = openDatabaseBackend(url, { poolSize: 4 });
      return { url: redactUrl(url), backend, db: new KyselyDatabase(backend), lagMs: undefined, probedAt: -Infinity };
    });
    const reads = new ReplicaReads(primary, replicas, options, log);
    await reads.#probe();
    reads.#schedule();
    return reads;
  }

  /** The replicas as the last probes saw them. */
  states(now = performance.now()): ReplicaState[] {
    return this.#replicas.map((r) => ({ url: r.url, lagMs: r.lagMs, usable: this.#usable(r, now) }));
  }

  async getSale(id: number): Promise<Sale | undefined> {
    return this.#read((db) => db.getSale(id));
  }

  async getOrder(orderId: string): Promise<Order | undefined> {
    return this.#read((db) => db.getOrder(orderId));
  }

  /** Stops probing and closes the replicas' connections (not the primary's). */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#probing;
    await Promise.all(this.#replicas.map((r) => r.db.close().catch(() => undefined)));
  }

  async #read<T>(query: (db: SeckillDatabase) => Promise<T | undefined>): Promise<T | undefined> {
    const replica = this.#pick();
    if (replica) {
      try {
        const found = await query(replica.db);
        if (found !== undefined) {
          this.#options.onRead?.('replica');
          return found;
        }
      } catch (err) {
        // Stop using it until the next probe says otherwise.
        replica.lagMs = undefined;
        this.#log?.warn({ replica: replica.url, err }, 'read from a replica failed; the primary answers until it is healthy again');
      }
    }
    this.#options.onRead?.('primary');
    return query(this.#primary);
  }

  /** The next usable replica, round robin; undefined when none is. */
  #pick(): Replica | undefined {
    const now = performance.now();
    for (let i = 0; i < this.#replicas.length; i++) {
      const replica = this.#replicas[(this.#next + i) % this.#replicas.length]!;
      if (this.#usable(replica, now)) {
        this.#next = (this.#next + i + 1) % this.#replicas.length;
        return replica;
      }
    }
    return undefined;
  }

  #usable(replica: Replica, now: number): boolean {
    return (
      replica.lagMs !== undefined &&
      replica.lagMs <= this.#options.maxLagMs &&
      now - replica.probedAt <= PROBE_VALIDITY * this.#options.probeIntervalMs
    );
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#probing = this.#probe().finally(() => {
        if (this.#timer) this.#schedule();
      });
    }, this.#options.probeIntervalMs);
    this.#timer.unref();
  }

  async #probe(): Promise<void> {
    await Promise.all(
      this.#replicas.map(async (replica) => {
        const wasUsable = this.#usable(replica, performance.now());
        try {
          replica.lagMs = await replicationLagMs(replica.backend);
          replica.probedAt = performance.now();
        } catch {
          replica.lagMs = undefined;
        }
        const usable = this.#usable(replica, performance.now());
        const facts = { replica: replica.url, lagMs: replica.lagMs, maxLagMs: this.#options.maxLagMs };
        if (usable && !wasUsable) this.#log?.info(facts, 'replica serves stale-tolerant reads');
        if (!usable && wasUsable) this.#log?.warn(facts, 'replica lags or does not replicate; its reads go to the primary');
      }),
    );
  }
}
