import { Pool } from 'pg';
import type { CustomTypesConfig } from 'pg';

/** How long opening a connection may take before it counts as failed (libpq's `connect_timeout`, in seconds, overrides). */
const CONNECT_TIMEOUT_MS = 5000;
/**
 * How long one statement may go unanswered (node-postgres's `query_timeout`, in ms,
 * overrides). Ours take milliseconds; the longest are the census counts over a whole table.
 * Without a limit, a primary that hangs (frozen, or cut off without a reset) holds the
 * order writer's batch forever, where a failed query is a pause it retries.
 */
const QUERY_TIMEOUT_MS = 30_000;
/** TCP keepalive: a peer that vanished without a reset (dead machine) is noticed even while idle. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/**
 * The connection limits of a `postgres://` URL: libpq's `connect_timeout` (seconds) and
 * node-postgres's `query_timeout` (ms) when the URL sets them, else our defaults.
 *
 * @example
 * postgresTimeouts('postgres://u@db/seckill?connect_timeout=2&query_timeout=1000'); // { connectMs: 2000, queryMs: 1000 }
 */
export function postgresTimeouts(url: string): { readonly connectMs: number; readonly queryMs: number } {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    params = new URLSearchParams();
  }
  const read = (name: string, unitMs: number, fallback: number): number => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) {
      throw new Error(`the database URL sets ${name}=${raw}; use a number ≥ 0 (${unitMs === 1000 ? 'seconds' : 'ms'}; 0 means no limit)`);
    }
    return value * unitMs;
  };
  return { connectMs: read('connect_timeout', 1000, CONNECT_TIMEOUT_MS), queryMs: read('query_timeout', 1, QUERY_TIMEOUT_MS) };
}

/**
 * A pg pool that survives its server going away: behind HAProxy and Patroni the primary
 * can die, or be replaced, under any connection at any moment.
 *
 * - Every client gets an `error` listener for its whole life. pg-pool listens only while
 *   a client is idle; a server that ends a connection while the client is checked out
 *   between two statements (inside a transaction) would otherwise raise an unhandled
 *   `error` event and end the process. The error still fails that client's next query,
 *   and the pool drops a client that is no longer queryable when it is released.
 * - Connects and statements have time limits, and TCP keepalive is on, so a hung or
 *   vanished server fails the query instead of hanging its caller.
 */
export function createPostgresPool(url: string, poolSize: number, types: CustomTypesConfig): Pool {
  const { connectMs, queryMs } = postgresTimeouts(url);
  const pool = new Pool({
    connectionString: url,
    max: poolSize,
    types,
    connectionTimeoutMillis: connectMs,
    query_timeout: queryMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
  });
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  // An idle client whose server went away is dropped by the pool; the next query reports
  // the failure to its caller. Without a listener the event would end the process.
  pool.on('error', () => undefined);
  return pool;
}
