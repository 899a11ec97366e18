import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { LabelledCounter, PlainHistogram } from './hot-path-metrics.js';

/** What one purchase attempt ended as, for `seckill_purchases_total{outcome}`. */
export type PurchaseOutcome =
  | 'reserved'
  | 'existing'
  | 'sold_out'
  | 'not_active'
  | 'not_found'
  | 'rate_limited'
  | 'unavailable';

const PURCHASE_OUTCOMES: readonly PurchaseOutcome[] = ['reserved', 'existing', 'sold_out', 'not_active', 'not_found', 'rate_limited', 'unavailable'];

/** Live values the metrics read when scraped; supplied by the running node. */
export interface MetricsSources {
  /** Remaining units per active sale. */
  remainingBySale(): Promise<ReadonlyMap<number, number>>;
  /** Accepted orders not yet written to the database, over all sales. */
  pendingOrders(): Promise<number>;
  /** Database replicas and their last measured lag, when replicas are configured. */
  replicas?(): readonly { readonly url: string; readonly lagMs: number | undefined; readonly usable: boolean }[];
}

/** The metrics of another thread of this process, as `registry.getMetricsAsJSON()` gives them. */
export type PeerMetrics = () => Promise<MetricObjectWithValues<MetricValue<string>>[]>;

/** Options of {@link SeckillMetrics}. */
export interface SeckillMetricsOptions {
  /**
   * Collect the process metrics (CPU, memory, event loop). Off in a worker thread: the
   * process is already counted by the main thread, and summing both would double it.
   */
  readonly processMetrics?: boolean;
}

/**
 * The Prometheus metrics of one process (`GET /metrics`). Counters are updated on the
 * purchase path; values that need a look-up are read only when scraped.
 */
export class SeckillMetrics {
  readonly registry = new Registry();
  /** Purchase attempts by outcome (updated on every purchase, so kept cheap). */
  readonly purchases: LabelledCounter<PurchaseOutcome>;
  readonly purchaseSeconds: PlainHistogram;
  /** Stale-tolerant reads (order status, a sale's first load) by where they were answered. */
  readonly databaseReads: LabelledCounter<'replica' | 'primary'>;
  readonly ordersPersisted: Counter;
  readonly ordersRejected: Counter<'reason'>;
  readonly ordersDeadLettered: Counter;
  readonly ordersExpired: Counter;
  readonly unitsReleased: Counter;
  readonly writerErrors: Counter;
  /** Age of the oldest order in the newest batch the writer committed. */
  readonly writerLagSeconds: Gauge;
  /** 1 while the writer holds batches back because the database fails them all (see DatabaseCircuit). */
  readonly writerCircuitOpen: Gauge;
  #sources: MetricsSources | undefined;
  readonly #peers: PeerMetrics[] = [];

  constructor(options: SeckillMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'seckill_process_' });
    this.purchases = new LabelledCounter(this.registry, 'seckill_purchases_total', 'Purchase attempts by outcome', 'outcome', PURCHASE_OUTCOMES);
    this.purchaseSeconds = new PlainHistogram(
      this.registry,
      'seckill_purchase_duration_seconds',
      'Time to answer a purchase attempt',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    const metrics = this;
    this.databaseReads = new LabelledCounter(this.registry, 'seckill_db_reads_total', 'Stale-tolerant reads by where they were answered (replica, or primary as fallback)', 'target', ['replica', 'primary']);
    new Gauge({
      name: 'seckill_db_replica_lag_seconds',
      help: 'Replication lag of each database replica at its last probe (absent: not replicating or not answering)',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        for (const replica of metrics.#sources?.replicas?.() ?? []) {
          if (replica.lagMs !== undefined) this.set({ replica: replica.url }, replica.lagMs / 1000);
        }
      },
    });
    this.ordersPersisted = new Counter({
      name: 'seckill_orders_persisted_total',
      help: 'Accepted orders written to the database',
      registers,
    });
    this.ordersRejected = new Counter({
      name: 'seckill_orders_rejected_total',
      help: 'Accepted orders the database refused (sold_out: the stock store had oversold; duplicate_user)',
      labelNames: ['reason'],
      registers,
    });
    this.ordersDeadLettered = new Counter({
      name: 'seckill_orders_dead_lettered_total',
      help: 'Queue entries moved to the dead-letter queue',
      registers,
    });
    this.ordersExpired = new Counter({
      name: 'seckill_orders_expired_total',
      help: 'Unpaid orders expired at the end of their payment window',
      registers,
    });
    this.unitsReleased = new Counter({
      name: 'seckill_units_released_total',
      help: 'Units given back to sale (expired, cancelled, rejected orders)',
      registers,
    });
    this.writerErrors = new Counter({
      name: 'seckill_writer_errors_total',
      help: 'Order writer batches that failed and will be retried',
      registers,
    });
    this.writerCircuitOpen = new Gauge({
      name: 'seckill_writer_circuit_open',
      help: '1 while the order writer holds batches back and probes a database that fails them all; orders wait in the queue',
      registers,
    });
    this.writerLagSeconds = new Gauge({
      name: 'seckill_writer_lag_seconds',
      help: 'Age of the oldest order in the last batch written to the database',
      registers,
    });
    new Gauge({
      name: 'seckill_sale_remaining',
      help: 'Units still for sale, per active sale',
      labelNames: ['sale'],
      registers,
      async collect() {
        this.reset();
        const remaining = await metrics.#sources?.remainingBySale().catch(() => undefined);
        for (const [sale, units] of remaining ?? []) this.set({ sale: String(sale) }, units);
      },
    });
    new Gauge({
      name: 'seckill_orders_pending',
      help: 'Accepted orders not yet written to the database',
      registers,
      async collect() {
        const pending = await metrics.#sources?.pendingOrders().catch(() => undefined);
        if (pending !== undefined) this.set(pending);
      },
    });
  }

  /** Connects the scrape-time gauges to the running node. */
  observe(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** Adds another thread's metrics (e.g. the writer thread's) to what {@link text} exposes. */
  addPeer(peer: PeerMetrics): void {
    this.#peers.push(peer);
  }

  /**
   * The Prometheus text of this process: this registry, plus every peer's metrics summed
   * in (counters and histograms add up; a peer that does not answer is left out rather
   * than failing the scrape).
   */
  async text(): Promise<string> {
    if (this.#peers.length === 0) return this.registry.metrics();
    const own = await this.registry.getMetricsAsJSON();
    const peers = await Promise.all(this.#peers.map((peer) => peer().catch(() => undefined)));
    const all = [own, ...peers.filter((p) => p !== undefined)];
    return AggregatorRegistry.aggregate(all).metrics();
  }
}
