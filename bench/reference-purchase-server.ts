/**
 * The yardstick the brief for the purchase benchmark names: a bare-bones fastify route that
 * verifies the buyer's HS256 token and reserves a unit with one ioredis Lua call, nothing
 * else: no rate limit, no order queued for the database, no metrics, no epoch or sold-out
 * bookkeeping, no batching. `npm run bench` measures it next to the real route (line
 * "reference"), so the ratio of Seckill's purchase path to this one says what the
 * guarantees cost on the machine at hand, whatever that machine is.
 *
 * Usage: `node dist/bench/reference-purchase-server.js <port>` with BENCH_REDIS_URL,
 * BENCH_JWT_SECRET and BENCH_KEY_PREFIX in the environment; prints `listening <url>` once
 * ready, stops on SIGTERM/SIGINT. It sells `BENCH_STOCK` units (default 10,000,000) of one
 * sale, whatever sale id the path names.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { createVerifier } from 'fast-jwt';
import { Redis } from 'ioredis';

/** KEYS: stock, buyers. ARGV: user id. Returns 1 reserved, 0 sold out, -1 already bought. */
const RESERVE = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(process.argv[2] ?? '0');
const prefix = env('BENCH_KEY_PREFIX');
const redis = new Redis(env('BENCH_REDIS_URL'), { enableAutoPipelining: true });
redis.defineCommand('reserve', { numberOfKeys: 2, lua: RESERVE });
await redis.set(`${prefix}stock`, process.env.BENCH_STOCK ?? '10000000');
const verify = createVerifier({ key: env('BENCH_JWT_SECRET'), algorithms: ['HS256'] });

const app = Fastify({ logger: false });
app.post('/api/sales/:id/purchase', async (request, reply) => {
  let user: string;
  try {
    user = String((verify((request.headers.authorization ?? '').slice('Bearer '.length)) as { sub: unknown }).sub);
  } catch {
    return reply.code(401).send({ code: 'UNAUTHORIZED', message: 'bad token' });
  }
  const reserve = (redis as unknown as { reserve(stock: string, buyers: string, user: string): Promise<number> }).reserve;
  const result = await reserve.call(redis, `${prefix}stock`, `${prefix}buyers`, user);
  if (result === 0) return reply.code(409).send({ code: 'SOLD_OUT', message: 'sold out' });
  return reply.code(result === 1 ? 202 : 200).send({ orderId: randomUUID(), status: 'pending' });
});

const url = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening ${url}\n`);

const stop = (): void => {
  Promise.all([app.close(), redis.quit()]).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
