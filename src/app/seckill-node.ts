import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { redactUrl } from '../config/config.js';
import type { SeckillConfig } from '../config/config.js';
import { openDatabase } from '../db/open-database.js';
import { ReplicaReads } from '../db/replica-reads.js';
import type { SeckillDatabase } from '../db/seckill-database.js';
import { buildApi } from '../http/app.js';
import { startLogArchiving } from '../backup/log-archiving.js';
import type { LogArchiving } from '../backup/log-archiving.js';
import { SeckillMetrics } from '../ops/metrics.js';
import { startOps } from '../ops/ops-role.js';
import type { OpsRole } from '../ops/ops-role.js';
import { Checkout } from '../orders/checkout.js';
import { SoldOutHolders } from '../orders/sold-out-holders.js';
import { OrderBook } from '../orders/order-book.js';
import { OrderWriter } from '../orders/order-writer.js';
import { PaymentWindow } from '../orders/payment-window.js';
import { Reconciler } from '../orders/reconciler.js';
import { SaleCatalog } from '../orders/sale-catalog.js';
import { createStockStore, MemoryStockStore } from '../stock/index.js';
import type { StockStore } from '../stock/stock-store.js';
import { startWriterThread } from './writer-thread.js';
import type { WriterThread } from './writer-thread.js';

/** How long the periodic repair leaves a new sale to the node that created it (and warms it). */
const NEW_SALE_GRACE_MS = 2000;

/** A running Seckill process: the roles it was asked for, and how to stop it cleanly. */
export interface SeckillNode {
  /** `http://host:port`: the API with the api role; health and metrics in any case ('' in the writer thread). */
  readonly url: string;
  readonly config: SeckillConfig;
  readonly db: SeckillDatabase;
  readonly store: StockStore;
  readonly reconciler: Reconciler;
  /** The order writer of this thread; undefined without the writer role, or when it runs in the writer thread. */
  readonly writer: OrderWriter | undefined;
  readonly metrics: SeckillMetrics;
  readonly paymentWindow: PaymentWindow;
  /** The HTTP server; undefined in the writer thread, which does not listen. */
  readonly api: FastifyInstance | undefined;
  readonly log: Logger;
  /**
   * Drains and stops: stops being ready, waits `drainMs` so balancers notice, finishes
   * in-flight requests, lets the writer commit the batch in hand, then closes connections.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

export interface StartNodeOptions {
  readonly log?: Logger;
  /** Apply database migrations first (the single-process start does; a cluster's primary does it once). */
  readonly migrate?: boolean;
  /** Name of this process's order writer in the consumer group. */
  readonly consumer?: string;
  /**
   * This node is the writer thread of another (see writer-thread.ts): no HTTP listener,
   * no process metrics and no scrape-time gauges, which the main thread already has.
   */
  readonly writerThread?: boolean;
}

/**
 * Starts one Seckill process with the roles in `config.roles`: connects the database and
 * the stock store, rebuilds in-process stock from the database when the store is memory,
 * then starts the order writer and payment-window sweeps (writer role), scheduled backups,
 * drills and alerts (ops role), and the HTTP API (api role).
 */
export async function startNode(config: SeckillConfig, options: StartNodeOptions = {}): Promise<SeckillNode> {
  const log = options.log ?? pino({ level: config.logLevel, name: 'seckill' });
  const db = await openDatabase(config.databaseUrl);
  let store: StockStore | undefined;
  try {
    if (options.migrate ?? true) {
      const outcome = await db.migrate();
      if (outcome.error) {
        throw new Error(`database migration failed after applying [${outcome.applied.join(', ')}]: ${outcome.error.message}`, { cause: outcome.error });
      }
    }
    store = await createStockStore({
      redisUrl: config.redisUrl,
      keyPrefix: config.redisKeyPrefix,
      durability: config.durability,
      replicaTimeoutMs: config.replicaTimeoutMs,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      autoPipelining: config.redisAutoPipelining,
    });
  } catch (err) {
    await store?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  // Assigned in the try above, which rethrows on failure.
  const stockStore: StockStore = store!;
  const inWriterThread = options.writerThread ?? false;
  // With Redis the writer can run beside the API instead of on its event loop (I3 holds
  // either way: orders wait in the stream until some writer commits them).
  const writerApart =
    !inWriterThread && config.writerThread && config.roles.includes('api') && config.roles.includes('writer') && !(stockStore instanceof MemoryStockStore);
  const consumer = options.consumer ?? `${hostname()}:${process.pid}`;
  const metrics = new SeckillMetrics({ processMetrics: !inWriterThread });
  // Order status and a sale's first load may be a little stale: replicas answer them when configured.
  let replicaReads: ReplicaReads | undefined;
  if (config.databaseReplicaUrls.length > 0 && config.roles.includes('api') && !inWriterThread) {
    replicaReads = await ReplicaReads.open(db, config.databaseReplicaUrls, { maxLagMs: config.databaseReplicaMaxLagMs, onRead: (target) => metrics.databaseReads.inc(target) }, log);
  }
  const reads = replicaReads ?? db;
  const catalog = new SaleCatalog(reads);
  const reconciler = new Reconciler(db, stockStore);
  const paymentWindow = new PaymentWindow(db, stockStore, catalog, metrics, log, config.expiryIntervalMs);
  const orders = new OrderBook(db, stockStore, paymentWindow, reads);
  const checkout = new Checkout(
    stockStore,
    catalog,
    { rateLimitPerUser: config.rateLimitPerUser, rateLimitPerIp: config.rateLimitPerIp },
    new SoldOutHolders(stockStore, log),
  );
  let accepting = false;

  if (stockStore instanceof MemoryStockStore) {
    // The in-process store starts empty: rebuild every sale from the database (I5).
    const report = await reconciler.run({ repair: true });
    const failed = report.sales.filter((s) => s.error);
    if (failed.length > 0) throw new Error(`could not load the stock of sales ${failed.map((s) => `${s.saleId} (${s.error})`).join(', ')}`);
  }

  let writer: OrderWriter | undefined;
  let writerThread: WriterThread | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let reconciling: Promise<unknown> | undefined;
  if (writerApart) {
    try {
      writerThread = await startWriterThread({ config, consumer: `${consumer}/writer` }, log);
    } catch (err) {
      await stockStore.close().catch(() => undefined);
      await replicaReads?.close();
      await db.close().catch(() => undefined);
      throw err;
    }
    metrics.addPeer(writerThread.metrics);
  } else if (config.roles.includes('writer')) {
    const embedded = stockStore instanceof MemoryStockStore;
    writer = new OrderWriter(db, stockStore, catalog, metrics, log, {
      consumer,
      batchSize: config.writerBatchSize,
      claimIdleMs: config.writerClaimIdleMs,
      // With the in-process store a buyer's answer waits for the commit of its order, so a
      // pause to gather a fuller batch would be added to every purchase (it made each one
      // wait 20 ms). Orders that arrive during a commit form the next batch anyway.
      ...(embedded ? { lingerMs: 0 } : {}),
    });
    if (embedded) stockStore.onEnqueue(() => writer!.nudge());
    writer.start();
    paymentWindow.start();
    if (config.reconcileIntervalMs > 0) {
      const tick = (): void => {
        reconciling = reconciler
          .run({ repair: true, onlyMissing: true, activeAt: Date.now(), createdBefore: Date.now() - NEW_SALE_GRACE_MS })
          .then((report) => {
            for (const finding of report.sales) {
              if (finding.repaired) log.warn({ sale: finding }, 'reconciler: rebuilt the lost stock state of a sale');
              if (finding.error) log.error({ saleId: finding.saleId, error: finding.error }, 'reconciler: could not check a sale');
            }
          })
          .catch((err: unknown) => log.warn({ err }, 'reconciler: run failed; retrying next interval'))
          .finally(() => {
            if (reconcileTimer) reconcileTimer = setTimeout(tick, config.reconcileIntervalMs);
          });
      };
      reconcileTimer = setTimeout(tick, config.reconcileIntervalMs);
    }
  }

  // Backups, verification, pruning, drills and backup alerts: one process of a deployment.
  const ops: OpsRole | undefined = config.roles.includes('ops') ? startOps(config, log, metrics.registry) : undefined;
  const archiving: LogArchiving | undefined =
    config.roles.includes('ops') && config.pitrArchive ? await startLogArchiving(config, log) : undefined;

  if (!inWriterThread) metrics.observe({
    async remainingBySale() {
      const now = Date.now();
      const result = new Map<number, number>();
      for (const sale of catalog.known()) {
        if (sale.startsAt > now || sale.endsAt <= now) continue;
        const snapshot = await stockStore.snapshot(sale.id);
        if (snapshot) result.set(sale.id, snapshot.remaining);
      }
      return result;
    },
    replicas: replicaReads ? () => replicaReads.states() : undefined,
    async pendingOrders() {
      let pending = 0;
      for (const saleId of await stockStore.saleIds()) pending += (await stockStore.snapshot(saleId))?.pending ?? 0;
      return pending;
    },
  });

  /** Stops everything but the HTTP server, in dependency order: jobs first, connections last. */
  const stopBackground = async (): Promise<void> => {
    clearTimeout(reconcileTimer);
    reconcileTimer = undefined;
    await reconciling;
    await archiving?.stop();
    await ops?.stop();
    await writerThread?.stop();
    await writer?.stop();
    await paymentWindow.stop();
    await stockStore.close();
    await replicaReads?.close();
    await db.close();
  };

  const parts = { config, db, store: stockStore, reconciler, writer, metrics, paymentWindow, log };
  if (inWriterThread) {
    let closing: Promise<void> | undefined;
    return {
      ...parts,
      url: '',
      api: undefined,
      close() {
        closing ??= stopBackground();
        return closing;
      },
    };
  }

  const api = buildApi({ config, db, store: stockStore, catalog, checkout, orders, reconciler, metrics, isAccepting: () => accepting }, log);
  let url: string;
  try {
    url = await api.listen({ host: config.host, port: config.port });
  } catch (err) {
    await stopBackground();
    throw err;
  }
  accepting = true;
  log.info(
    { url, roles: config.roles, writer: writerThread ? 'thread' : writer ? 'in-process' : 'none', database: redactUrl(config.databaseUrl), stockStore: stockStore.kind, durability: config.durability },
    'seckill node started',
  );

  let closing: Promise<void> | undefined;
  return {
    ...parts,
    url,
    api,
    close({ drainMs = 0 } = {}) {
      closing ??= (async () => {
        accepting = false;
        if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
        await api.close();
        await stopBackground();
        log.info('seckill node stopped');
      })();
      return closing;
    },
  };
}
