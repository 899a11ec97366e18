/**
 * `node dist/bench/reserve-script-cost.js`: what one reservation costs Redis, by how many
 * reservations of a sale arrive together (and so share one `reserve-batch-5.lua` call, see
 * src/stock/redis/reserve-batcher.ts).
 *
 * The full benchmark (`npm run bench`) shares 2 cores between wrk, the node, Redis and
 * MariaDB, so Redis's share there moves with everything else. Here a private Redis serves
 * one client that sends bursts of reservations through the real RedisStockStore, and Redis's
 * own accounting (`INFO commandstats`, the script's total time) is divided by the number of
 * reservations: a figure that repeats from run to run on a quiet machine.
 *
 * Options: --reservations N (default 100000 per line), --limit N (per-user rate limit, default 5 as the service).
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RedisStockStore } from '../src/stock/index.js';
import { startRedis } from '../test/support/redis-server.js';
import { readRedisStats, resetRedisStats } from './redis-stats.js';

const { values } = parseArgs({ options: { reservations: { type: 'string', default: '100000' }, limit: { type: 'string', default: '5' } } });
const RESERVATIONS = Number(values.reservations);
const LIMIT = Number(values.limit);
const BURSTS = [1, 8, 20, 64, 256];

const redis = await startRedis();
const rows: string[] = [];
try {
  const store = await RedisStockStore.connect(redis.url);
  const raw = new Redis(redis.url);
  try {
    let saleId = 0;
    for (const burst of BURSTS) {
      saleId += 1;
      await store.warm({ saleId, stock: RESERVATIONS, remaining: RESERVATIONS, epoch: `e${saleId}`, buyers: [], released: [] });
      await resetRedisStats(redis.url);
      const started = performance.now();
      for (let done = 0; done < RESERVATIONS; done += burst) {
        const now = Date.now();
        const results = await Promise.all(
          Array.from({ length: Math.min(burst, RESERVATIONS - done) }, (_, i) =>
            store.reserve({ saleId, userId: `user-${done + i}`, orderId: `${saleId}-${done + i}-abcdefabcdef`, now, perUserLimit: LIMIT }),
          ),
        );
        if (results.some((r) => r.code !== 0)) throw new Error(`a reservation was refused: ${JSON.stringify(results.find((r) => r.code !== 0))}`);
      }
      const wallUs = ((performance.now() - started) * 1000) / RESERVATIONS;
      const stats = await readRedisStats(redis.url, 50);
      const script = stats.find((s) => s.command === 'evalsha');
      const inner = stats.filter((s) => s.command !== 'evalsha' && s.command !== 'eval').reduce((sum, s) => sum + s.usec, 0);
      rows.push(
        `${String(burst).padStart(5)}  ${String(script?.calls ?? 0).padStart(13)}  ${((script?.usec ?? 0) / RESERVATIONS).toFixed(2).padStart(21)}  ` +
          `${(inner / RESERVATIONS).toFixed(2).padStart(22)}  ${wallUs.toFixed(2).padStart(20)}`,
      );
      await raw.del(`seckill:{sale:${saleId}}:buyers`, `seckill:{sale:${saleId}}:holders`, `seckill:{sale:${saleId}}:orders`);
    }
  } finally {
    raw.disconnect();
    await store.close();
  }
} finally {
  await redis.stop();
}
process.stdout.write(
  `Redis cost of one reservation, ${RESERVATIONS.toLocaleString('en-US')} reservations per line, per-user limit ${LIMIT}\n` +
    'burst  script calls  script µs/reservation  commands in it µs/res.  client wall µs/res.\n' +
    `${rows.join('\n')}\n` +
    'burst: reservations of one sale sent together (1 = one at a time, as a lone buyer);\n' +
    'script µs: Redis\'s time in the reserve script per reservation; commands in it: the part spent in the\n' +
    'hash and stream commands it runs (the rest is the script call and Lua itself).\n',
);
