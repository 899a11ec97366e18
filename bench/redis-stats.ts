import { Redis } from 'ioredis';

/** One line of Redis `INFO commandstats`: where redis-server spent its time, by command. */
export interface RedisCommandStat {
  readonly command: string;
  readonly calls: number;
  /** Total microseconds spent executing it (commands run inside Lua scripts count too). */
  readonly usec: number;
  readonly usecPerCall: number;
}

async function withClient<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** `CONFIG RESETSTAT` on the benchmark's private Redis: the next read covers one measurement only. */
export async function resetRedisStats(url: string): Promise<void> {
  await withClient(url, (client) => client.call('CONFIG', 'RESETSTAT'));
}

/**
 * Redis's own accounting since the last reset, largest total time first. `evalsha` is the
 * whole script; the commands the scripts run (XADD, HSET, XRANGE…) are listed as well, so
 * the two overlap: read the script lines as totals and the others as its breakdown.
 */
export async function readRedisStats(url: string, limit = 12): Promise<RedisCommandStat[]> {
  const text = await withClient(url, (client) => client.info('commandstats'));
  const stats: RedisCommandStat[] = [];
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/.exec(line.trim());
    if (m) stats.push({ command: m[1], calls: Number(m[2]), usec: Number(m[3]), usecPerCall: Number(m[4]) });
  }
  return stats.sort((a, b) => b.usec - a.usec).slice(0, limit);
}
