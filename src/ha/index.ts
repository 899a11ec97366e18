/**
 * The ha part: connections that follow failovers of the engines Seckill depends on.
 * Redis: Sentinel and Cluster URLs ({@link parseRedisUrl}), fail-fast clients ({@link createRedisClient})
 * and a connection that replaces a client ioredis gave up on ({@link RedisConnection}).
 */
export { createRedisClient } from './redis-client.js';
export type { RedisClient, RedisClientOptions } from './redis-client.js';
export { ClusterReplicaWaiter } from './redis-cluster-durability.js';
export { CLUSTER_SLOTS, keySlot } from './redis-cluster-slot.js';
export { NewestEpochSentinelConnector } from './newest-epoch-sentinel-connector.js';
export { RedisConnection } from './redis-connection.js';
export { DEFAULT_CLUSTER_PORT, DEFAULT_SENTINEL_PORT, describeRedisEndpoint, parseRedisUrl, RedisUrlError } from './redis-url.js';
export type { RedisEndpoint, SentinelAddress } from './redis-url.js';
