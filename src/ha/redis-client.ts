import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { NewestEpochSentinelConnector } from './newest-epoch-sentinel-connector.js';
import type { RedisEndpoint } from './redis-url.js';

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
 * The client may end for good after a failover (ioredis 5.11.1, see docs/failover.md): wrap
 * it in a {@link RedisConnection}, which makes a new one.
 */
export function createRedisClient(endpoint: RedisEndpoint, options: RedisClientOptions): Redis {
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
