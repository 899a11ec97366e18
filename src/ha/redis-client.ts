import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { NewestEpochSentinelConnector } from './newest-epoch-sentinel-connector.js';
import type { RedisEndpoint } from './redis-url.js';

/**
 * A client of the stock store's Redis: one connection (`Redis`, plain or through Sentinel),
 * or a Redis Cluster client that routes each command to the master owning its key's slot.
 */
export type RedisClient = Redis | Cluster;

/** How a client made by {@link createRedisClient} behaves. */
export interface RedisClientOptions {
  /** Fail a command not answered within this time. */
  readonly commandTimeoutMs: number;
  /** Give up one TCP connection attempt after this long. */
  readonly connectTimeoutMs: number;
  /** ioredis `enableAutoPipelining`. */
  readonly autoPipelining: boolean;
}

/**
 * Most time between two reconnection attempts. ioredis' default grows to 2 s; after a
 * failover that alone could exceed the purchase RTO target (5 s), so attempts stay close.
 */
const MAX_RECONNECT_DELAY_MS = 500;
/** How long a connection being left may wait for the server to close its side. */
const DISCONNECT_TIMEOUT_MS = 100;

/**
 * A client that fails fast: no offline queue, no retries of a command, no resending of
 * unanswered commands after a reconnect (a resent reservation could be applied twice, on a
 * primary the caller already gave up on), a command timeout. While Redis is unreachable,
 * calls reject at once and the caller answers 503.
 *
 * With a Sentinel endpoint the client asks the Sentinels for the primary at every
 * (re)connect, and listens on every Sentinel for `+switch-master` (`failoverDetector`), so it
 * leaves a demoted or frozen primary as soon as Sentinel has promoted another one, and goes
 * where the Sentinel with the newest configuration epoch says ({@link NewestEpochSentinelConnector}). A primary
 * demoted under an open connection answers READONLY: that reconnects too.
 *
 * With a Cluster endpoint it is an ioredis `Cluster` over the seed nodes, with the same
 * fail-fast settings on every node connection, reading and writing on masters only
 * (`scaleReads: 'master'`: a replica may lag behind a reservation just made).
 *
 * The client may end for good after a failover (ioredis 5.11.1, see docs/failover.md): wrap
 * it in a {@link RedisConnection}, which makes a new one.
 */
export function createRedisClient(endpoint: RedisEndpoint, options: RedisClientOptions): RedisClient {
  if (endpoint.kind === 'cluster') return createClusterClient(endpoint, options);
  const common: RedisOptions = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: options.autoPipelining,
    retryStrategy: (attempt) => Math.min(50 * attempt, MAX_RECONNECT_DELAY_MS),
    // Leaving a connection waits for the peer to close its side, 2 s by default. A frozen
    // primary never does: measured, that alone kept the client on it 2 s after Sentinel's
    // failover notice. Destroy the socket soon instead.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    // A demoted primary answers READONLY: reconnect (through Sentinel, to the new primary).
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  const client =
    endpoint.kind === 'single'
      ? new Redis(endpoint.url, common)
      : new Redis({
          ...common,
          sentinels: endpoint.sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: endpoint.masterName,
          db: endpoint.db,
          ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
          ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
          ...(endpoint.sentinelPassword === undefined ? {} : { sentinelPassword: endpoint.sentinelPassword }),
          role: 'master',
          // Follows the Sentinel with the newest configuration epoch, not the first to answer.
          Connector: NewestEpochSentinelConnector,
          failoverDetector: true,
          // A frozen Sentinel must not stall the search for the primary.
          sentinelCommandTimeout: options.commandTimeoutMs,
          sentinelRetryStrategy: (attempt) => Math.min(50 * attempt, MAX_RECONNECT_DELAY_MS),
          sentinelReconnectStrategy: (attempt) => Math.min(50 * attempt, MAX_RECONNECT_DELAY_MS),
        });
  // Without a listener ioredis prints every reconnect failure; health checks ping instead.
  client.on('error', () => undefined);
  return client;
}

/**
 * The Cluster form of {@link createRedisClient}. ioredis' own retries are cut down: a command
 * is sent once per node (`maxRetriesPerRequest: 0`), the client refuses commands while it has
 * no slot map (`enableOfflineQueue: false`), and it looks for the cluster again every 500 ms at
 * most, so a purchase meets a 503 rather than a queue while a shard is down.
 */
function createClusterClient(endpoint: Extract<RedisEndpoint, { kind: 'cluster' }>, options: RedisClientOptions): Cluster {
  const nodeOptions: ClusterOptions['redisOptions'] = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
  };
  const cluster = new Cluster(
    endpoint.nodes.map((n) => ({ host: n.host, port: n.port })),
    {
      redisOptions: nodeOptions,
      enableOfflineQueue: false,
      scaleReads: 'master',
      enableAutoPipelining: options.autoPipelining,
      clusterRetryStrategy: (attempt) => Math.min(50 * attempt, MAX_RECONNECT_DELAY_MS),
      // A slot map that never arrives must not hold the client longer than a command may take.
      slotsRefreshTimeout: options.commandTimeoutMs,
      // MOVED/ASK after a resharding or failover are followed at once; a cluster that is down
      // (CLUSTERDOWN, TRYAGAIN) is retried briefly, the command timeout still bounds the wait.
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      maxRedirections: 8,
    },
  );
  cluster.on('error', () => undefined);
  return cluster;
}
