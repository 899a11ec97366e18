/**
 * The stock part: what other parts may import. Pick a backend with {@link createStockStore}.
 */
import { MemoryStockStore } from './memory/memory-stock-store.js';
import { RedisStockStore } from './redis/redis-stock-store.js';
import type { Durability } from './redis/redis-stock-store.js';
import type { StockStore } from './stock-store.js';

export { ReleaseCode, ReserveCode } from './stock-store.js';
export type {
  QueuedOrder,
  ReserveRequest,
  ReserveResult,
  SaleStockSnapshot,
  SaleWarmup,
  StockStore,
} from './stock-store.js';
export { MemoryStockStore } from './memory/memory-stock-store.js';
export type { MemoryStockStoreOptions } from './memory/memory-stock-store.js';
export { RedisStockStore } from './redis/redis-stock-store.js';
export type { Durability, RedisStockStoreOptions } from './redis/redis-stock-store.js';

/** What {@link createStockStore} needs from the configuration. */
export interface StockStoreConfig {
  /**
   * `redis://host:port/db`, `redis-sentinel://host1:port1,host2:port2/<masterName>` for a
   * Sentinel-managed primary, or `redis-cluster://host1:port1,host2:port2` for a Redis Cluster
   * (see `src/ha/redis-url.ts`); empty or absent = the in-process memory store.
   */
  readonly redisUrl?: string;
  /** Default `seckill:`. */
  readonly keyPrefix?: string;
  /** Default `leader`. */
  readonly durability?: Durability;
  /** Default 250. */
  readonly replicaTimeoutMs?: number;
  /** Default 1000. */
  readonly commandTimeoutMs?: number;
  /** Send the commands of one event-loop tick in one write (ioredis auto-pipelining). */
  readonly autoPipelining?: boolean;
}

/**
 * The stock store the configuration asks for: Redis when `redisUrl` is set (connected and
 * ready), otherwise the memory store of the embedded mode.
 *
 * @throws when Redis cannot be reached; the message says where and what to check.
 */
export async function createStockStore(config: StockStoreConfig): Promise<StockStore> {
  if (!config.redisUrl) return new MemoryStockStore();
  return RedisStockStore.connect(config.redisUrl, {
    keyPrefix: config.keyPrefix,
    durability: config.durability,
    replicaTimeoutMs: config.replicaTimeoutMs,
    commandTimeoutMs: config.commandTimeoutMs,
    autoPipelining: config.autoPipelining,
  });
}
