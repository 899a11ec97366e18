/**
 * Reading `SECKILL_REDIS_URL`: a plain Redis (`redis://`, `rediss://`) or a group of Redis
 * Sentinels (`redis-sentinel://`). Plain URLs are handed to ioredis as they are; the
 * Sentinel form is parsed here, because `new URL()` cannot hold several hosts.
 *
 * Sentinel syntax (documented in README.md and docs/failover.md):
 *
 * ```
 * redis-sentinel://[[username]:password@]host1[:port1][,host2[:port2]…]/<masterName>[?db=N&sentinelPassword=…]
 * ```
 *
 * - hosts are the Sentinels (default port 26379), not the Redis servers: Sentinel says which
 *   server is the primary now;
 * - `username`/`password` are those of the Redis servers (primary and replicas);
 * - `sentinelPassword` (query) is the Sentinels' own `requirepass`, when they have one;
 * - `masterName` is the name in Sentinel's `sentinel monitor <masterName> …`;
 * - `db` is the Redis database number, default 0.
 *
 * Percent-escapes are decoded in the password and the master name.
 *
 * Cluster syntax (seed nodes; the client learns the others from `CLUSTER SLOTS`):
 *
 * ```
 * redis-cluster://[[username]:password@]host1[:port1][,host2[:port2]…][/]
 * ```
 *
 * - hosts are any reachable cluster nodes (default port 6379); listing several lets the client
 *   start while one of them is down;
 * - `username`/`password` are those of every cluster node; there is no database number
 *   (Redis Cluster has only database 0).
 */

/** Default port of `redis-sentinel`. */
export const DEFAULT_SENTINEL_PORT = 26379;

/** A Sentinel to ask where the primary is. */
export interface SentinelAddress {
  readonly host: string;
  readonly port: number;
}

/** Default port of a Redis Cluster node. */
export const DEFAULT_CLUSTER_PORT = 6379;

/** Where the stock store's Redis is: one server, whichever server the Sentinels name, or a Redis Cluster. */
export type RedisEndpoint =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      /** Seed nodes: where the client first asks for the slot map. */
      readonly nodes: readonly SentinelAddress[];
      readonly username?: string;
      readonly password?: string;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly SentinelAddress[];
      /** Sentinel's name of the monitored primary. */
      readonly masterName: string;
      readonly db: number;
      readonly username?: string;
      readonly password?: string;
      readonly sentinelPassword?: string;
    };

/** A Redis URL that cannot be used; the message says what is wrong and shows the syntax. */
export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

const SENTINEL_SYNTAX = 'redis-sentinel://[:password@]host1:port1,host2:port2,…/<masterName>[?db=N&sentinelPassword=…]';
const CLUSTER_SYNTAX = 'redis-cluster://[:password@]host1:port1,host2:port2,…';

/**
 * Parses a Redis URL of any supported form.
 *
 * @example
 * parseRedisUrl('redis-sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/seckill?db=2');
 * // { kind: 'sentinel', sentinels: [3 addresses], masterName: 'seckill', db: 2, password: 's3cret' }
 * @throws {RedisUrlError} naming what is wrong (the password never appears in the message).
 */
export function parseRedisUrl(url: string): RedisEndpoint {
  const text = url.trim();
  if (/^rediss?:\/\//i.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new RedisUrlError('it is not a valid URL; expected redis://[:password@]host:port/db');
    }
    return { kind: 'single', url: text };
  }
  if (/^redis-cluster:\/\//i.test(text)) return parseClusterUrl(text.slice('redis-cluster://'.length));
  if (!/^redis-sentinel:\/\//i.test(text)) {
    throw new RedisUrlError(
      `it must start with redis://, rediss:// or redis-sentinel:// (${SENTINEL_SYNTAX}), or redis-cluster:// (${CLUSTER_SYNTAX})`,
    );
  }
  return parseSentinelUrl(text.slice('redis-sentinel://'.length));
}

function parseSentinelUrl(rest: string): RedisEndpoint {
  const fail = (what: string): never => {
    throw new RedisUrlError(`${what}; expected ${SENTINEL_SYNTAX}`);
  };
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const queryAt = rest.indexOf('?');
  const query = new URLSearchParams(queryAt >= 0 ? rest.slice(queryAt + 1) : '');
  const beforeQuery = queryAt >= 0 ? rest.slice(0, queryAt) : rest;
  // The password may hold '/', ':' or ','; the last '@' ends it (hosts cannot contain '@').
  const at = beforeQuery.lastIndexOf('@');
  const userInfo = at >= 0 ? beforeQuery.slice(0, at) : undefined;
  const hostsAndPath = at >= 0 ? beforeQuery.slice(at + 1) : beforeQuery;
  const slash = hostsAndPath.indexOf('/');
  const hostList = slash >= 0 ? hostsAndPath.slice(0, slash) : hostsAndPath;
  const path = slash >= 0 ? hostsAndPath.slice(slash + 1) : '';

  const sentinels: SentinelAddress[] = [];
  for (const item of hostList.split(',')) {
    const entry = item.trim();
    if (entry === '') fail('a Sentinel address is empty');
    sentinels.push(parseAddress(entry, fail));
  }
  if (sentinels.length === 0) fail('no Sentinel address is given');

  let masterName = '';
  try {
    masterName = decodeURIComponent(path.replace(/\/+$/, ''));
  } catch {
    fail('the master name has a broken percent-escape');
  }
  if (masterName === '') fail('the master name (the path) is missing');
  if (/[\s/]/.test(masterName)) fail(`the master name ${JSON.stringify(masterName)} must not contain spaces or '/'`);

  let db = 0;
  for (const key of query.keys()) {
    if (key !== 'db' && key !== 'sentinelPassword') fail(`unknown option ${JSON.stringify(key)} (known: db, sentinelPassword)`);
  }
  const dbText = query.get('db');
  if (dbText !== null) {
    if (!/^\d{1,5}$/.test(dbText)) fail(`db=${JSON.stringify(dbText)} must be a database number from 0`);
    db = Number(dbText);
  }

  const { username, password } = parseUserInfo(userInfo, fail);
  const sentinelPassword = query.get('sentinelPassword') || undefined;
  return {
    kind: 'sentinel',
    sentinels,
    masterName,
    db,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
  };
}

function parseClusterUrl(rest: string): RedisEndpoint {
  const fail = (what: string): never => {
    throw new RedisUrlError(`${what}; expected ${CLUSTER_SYNTAX}`);
  };
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  if (rest.includes('?')) fail('options (after ?) are not supported');
  // The password may hold '/', ':' or ','; the last '@' ends it (hosts cannot contain '@').
  const at = rest.lastIndexOf('@');
  const userInfo = at >= 0 ? rest.slice(0, at) : undefined;
  let hostList = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = hostList.indexOf('/');
  if (slash >= 0) {
    // Redis Cluster serves database 0 only: a path would name a database it does not have.
    if (hostList.slice(slash).replace(/\/+$/, '') !== '') fail('a database number or path is not allowed (Redis Cluster has database 0 only)');
    hostList = hostList.slice(0, slash);
  }
  const nodes: SentinelAddress[] = [];
  for (const item of hostList.split(',')) {
    const entry = item.trim();
    if (entry === '') fail('a node address is empty');
    nodes.push(parseAddress(entry, fail, 'node', DEFAULT_CLUSTER_PORT));
  }
  const { username, password } = parseUserInfo(userInfo, fail);
  return {
    kind: 'cluster',
    nodes,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}

function parseUserInfo(
  userInfo: string | undefined,
  fail: (what: string) => never,
): { username: string | undefined; password: string | undefined } {
  let username: string | undefined;
  let password: string | undefined;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    try {
      username = decodeURIComponent(colon >= 0 ? userInfo.slice(0, colon) : userInfo) || undefined;
      password = colon >= 0 ? decodeURIComponent(userInfo.slice(colon + 1)) || undefined : undefined;
    } catch {
      fail('the user name or password has a broken percent-escape');
    }
    // `redis://secret@host` means a password in ioredis; keep that reading for the Sentinel and Cluster forms.
    if (colon < 0 && username !== undefined) {
      password = username;
      username = undefined;
    }
  }
  return { username, password };
}

function parseAddress(
  entry: string,
  fail: (what: string) => never,
  what = 'Sentinel',
  defaultPort = DEFAULT_SENTINEL_PORT,
): SentinelAddress {
  // [::1]:26379, host:26379, or a host alone.
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(entry);
  if (!match) return fail(`the ${what} address ${JSON.stringify(entry)} is not host[:port]`);
  const host = match[1].startsWith('[') ? match[1].slice(1, -1) : match[1];
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`the port of ${what} ${JSON.stringify(entry)} must be from 1 to 65535`);
  return { host, port };
}

/** The endpoint for messages and logs, without any password. */
export function describeRedisEndpoint(endpoint: RedisEndpoint): string {
  if (endpoint.kind === 'single') {
    try {
      const parsed = new URL(endpoint.url);
      if (parsed.password) parsed.password = '***';
      return parsed.toString();
    } catch {
      return 'the configured Redis URL';
    }
  }
  if (endpoint.kind === 'cluster') {
    const nodes = endpoint.nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`));
    return `Redis Cluster via nodes ${nodes.join(',')}`;
  }
  const hosts = endpoint.sentinels.map((s) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`));
  return `primary "${endpoint.masterName}" (db ${endpoint.db}) via Sentinels ${hosts.join(',')}`;
}
