/**
 * Redis Sentinel support: reading `redis-sentinel://` URLs, and the stock store on a real
 * Sentinel group (primary, replica, three Sentinels) following a failover.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { describeRedisEndpoint, parseRedisUrl, RedisConnection, RedisUrlError } from '../src/ha/index.js';
import { RedisStockStore, ReserveCode } from '../src/stock/index.js';
import { startRedis } from './support/redis-server.js';
import { startSentinelGroup } from './support/redis-sentinel.js';
import type { SentinelGroup } from './support/redis-sentinel.js';

describe('Redis URL syntax', () => {
  it('reads the Sentinel form: Sentinels, master name, db, passwords', () => {
    assert.deepEqual(parseRedisUrl('redis-sentinel://10.0.0.1:26379,10.0.0.2:26380,sentinel-c/seckill'), {
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 'sentinel-c', port: 26379 },
      ],
      masterName: 'seckill',
      db: 0,
    });
    assert.deepEqual(parseRedisUrl('redis-sentinel://:p%40ss,w/rd@[::1]:5000/my%2Dmaster?db=3&sentinelPassword=sp'), {
      kind: 'sentinel',
      sentinels: [{ host: '::1', port: 5000 }],
      masterName: 'my-master',
      db: 3,
      password: 'p@ss,w/rd',
      sentinelPassword: 'sp',
    });
    assert.deepEqual(parseRedisUrl('redis-sentinel://app:pw@h:1/m'), {
      kind: 'sentinel',
      sentinels: [{ host: 'h', port: 1 }],
      masterName: 'm',
      db: 0,
      username: 'app',
      password: 'pw',
    });
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379/2'), { kind: 'single', url: 'redis://127.0.0.1:6379/2' });
  });

  it('says what is wrong with a bad URL, without the password', () => {
    const cases: [string, RegExp][] = [
      ['redis-sentinel://h1:1,h2:2', /master name \(the path\) is missing/],
      ['redis-sentinel://h1:1,,h2:2/m', /a Sentinel address is empty/],
      ['redis-sentinel:///m', /a Sentinel address is empty/],
      ['redis-sentinel://h1:99999/m', /port of Sentinel "h1:99999" must be from 1 to 65535/],
      ['redis-sentinel://h1:x/m', /"h1:x" is not host\[:port\]/],
      ['redis-sentinel://h1/m?db=two', /db="two" must be a database number/],
      ['redis-sentinel://h1/m?role=slave', /unknown option "role"/],
      ['redis-sentinel://h1/a/b', /must not contain spaces or '\/'/],
      ['sentinel://h1/m', /must start with redis:\/\/, rediss:\/\/ or redis-sentinel:\/\//],
    ];
    for (const [url, message] of cases) {
      assert.throws(() => parseRedisUrl(url), (error: unknown) => error instanceof RedisUrlError && message.test(error.message), url);
      assert.match(
        (() => {
          try {
            parseRedisUrl(url);
            return '';
          } catch (error) {
            return (error as Error).message;
          }
        })(),
        /redis-sentinel:\/\/\[:password@\]host1:port1|redis:\/\//,
        `the message of ${url} shows the expected syntax`,
      );
    }
  });

  it('stops the configuration on a bad Sentinel URL, naming SECKILL_REDIS_URL and hiding the password', () => {
    assert.throws(
      () => loadConfig({ env: { SECKILL_REDIS_URL: 'redis-sentinel://:topsecret@h1:1,h2:2' } }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^invalid configuration SECKILL_REDIS_URL="redis-sentinel:\/\/:\*\*\*@h1:1,h2:2": .*master name/.test(error.message) &&
        !error.message.includes('topsecret'),
    );
    const config = loadConfig({ env: { SECKILL_REDIS_URL: 'redis-sentinel://h1:1,h2:2,h3:3/seckill?db=1', SECKILL_DURABILITY: 'replica' } });
    assert.equal(config.redisUrl, 'redis-sentinel://h1:1,h2:2,h3:3/seckill?db=1');
  });

  it('describes an endpoint for logs without its password', () => {
    assert.equal(
      describeRedisEndpoint(parseRedisUrl('redis-sentinel://:pw@a:1,b:2/seckill')),
      'primary "seckill" (db 0) via Sentinels a:1,b:2',
    );
  });
});

describe('RedisConnection', () => {
  it('replaces a client that ended without being closed, and tells its listeners', async () => {
    const redis = await startRedis();
    const connection = new RedisConnection(parseRedisUrl(redis.url), { commandTimeoutMs: 500, connectTimeoutMs: 2000, autoPipelining: false });
    try {
      const seen: unknown[] = [];
      connection.onClient((client) => seen.push(client));
      const first = connection.client;
      await sleep(100);
      assert.equal(await first.ping(), 'PONG');
      // What ioredis does by itself in the failover defect: the client ends for good.
      first.disconnect();
      const deadline = Date.now() + 5000;
      while (connection.replacements === 0 && Date.now() < deadline) await sleep(20);
      assert.equal(connection.replacements, 1);
      assert.notEqual(connection.client, first);
      assert.deepEqual(seen, [first, connection.client]);
      for (let i = 0; connection.client.status !== 'ready' && i < 100; i++) await sleep(20);
      assert.equal(await connection.client.ping(), 'PONG');
    } finally {
      await connection.close();
      await redis.stop();
    }
  });

  it('does not replace a client it was asked to close', async () => {
    const redis = await startRedis();
    const connection = new RedisConnection(parseRedisUrl(redis.url), { commandTimeoutMs: 500, connectTimeoutMs: 2000, autoPipelining: false });
    try {
      await sleep(100);
      await connection.close();
      await sleep(200);
      assert.equal(connection.replacements, 0);
      assert.equal(connection.client.status, 'end');
    } finally {
      await redis.stop();
    }
  });
});

describe('stock store through Redis Sentinel', { timeout: 90_000 }, () => {
  let group: SentinelGroup;
  before(async () => {
    group = await startSentinelGroup();
  });
  after(async () => {
    await group?.stop();
  });

  it('refuses to start with a master name the Sentinels do not know, saying why', async () => {
    const url = group.url.replace(/\/seckill$/, '/no-such-master');
    await assert.rejects(
      RedisStockStore.connect(url, { connectTimeoutMs: 1000 }),
      /could not connect to Redis at primary "no-such-master" \(db 0\) via Sentinels 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ within 1000 ms/,
    );
  });

  it('follows a kill -9 of the primary: sells on the promoted replica with every confirmed reservation kept', async () => {
    const store = await RedisStockStore.connect(group.url, { durability: 'replica', replicaTimeoutMs: 200, commandTimeoutMs: 500 });
    try {
      const saleId = 1;
      await store.warm({ saleId, stock: 100, remaining: 100, epoch: 'e1', buyers: [], released: [] });
      const confirmed = new Map<string, string>();
      for (let i = 0; i < 20; i++) {
        const result = await store.reserve({ saleId, userId: `u${i}`, orderId: `o${i}`, now: Date.now(), perUserLimit: 0 });
        assert.equal(result.code, ReserveCode.Reserved);
        assert.equal(await store.awaitDurable(saleId, result.orderId!), true, 'the replica confirmed it');
        confirmed.set(`u${i}`, result.orderId!);
      }

      const old = await group.primary();
      const killedAt = performance.now();
      await group.kill(old, 'SIGKILL');
      // Purchases while there is no primary fail at once (503 upstream), they never hang.
      const during = performance.now();
      await assert.rejects(store.reserve({ saleId, userId: 'during', orderId: 'o-during', now: Date.now(), perUserLimit: 0 }));
      assert.ok(performance.now() - during < 1000, 'failed fast');

      const promoted = await group.waitForFailover(old);
      assert.notEqual(promoted.port, old.port);
      let sellingAgainMs = -1;
      for (const deadline = performance.now() + 15_000; performance.now() < deadline; ) {
        const result = await store.reserve({ saleId, userId: 'after', orderId: 'o-after', now: Date.now(), perUserLimit: 0 }).catch(() => undefined);
        if (result?.code === ReserveCode.Reserved) {
          sellingAgainMs = performance.now() - killedAt;
          break;
        }
        await sleep(25);
      }
      assert.ok(sellingAgainMs > 0, 'sells again after the failover');
      assert.ok(sellingAgainMs < 5000, `sold again ${Math.round(sellingAgainMs)} ms after the kill, target < 5000 ms`);
      // Nothing confirmed was lost: the promoted replica has the state with its epoch.
      const snapshot = await store.snapshot(saleId);
      assert.equal(snapshot?.epoch, 'e1', 'the sale state survived (no rebuild needed)');
      assert.equal(snapshot?.remaining, 100 - 20 - 1);
      // The promoted node has no replica until the old primary rejoins: nothing is confirmed.
      assert.equal(await store.awaitDurable(saleId, 'o-after'), false, 'no replica left to confirm');

      await group.restartAsReplica(old);
      const result = await store.reserve({ saleId, userId: 'rejoined', orderId: 'o-rejoined', now: Date.now(), perUserLimit: 0 });
      assert.equal(await store.awaitDurable(saleId, result.orderId!), true, 'the old primary, back as a replica, confirms writes');
      for (const [user, orderId] of confirmed) {
        assert.deepEqual(await store.reserve({ saleId, userId: user, orderId: 'x', now: Date.now(), perUserLimit: 0 }), { code: ReserveCode.Duplicate, orderId });
      }
      assert.equal((await group.primary()).port, promoted.port, 'the restarted node did not take the primary role back');
    } finally {
      await store.close();
    }
  });

  it('answers a retry with the order it holds only once a replica has that order', async () => {
    const store = await RedisStockStore.connect(group.url, { durability: 'replica', replicaTimeoutMs: 200, commandTimeoutMs: 500 });
    const primary = await group.primary();
    const replicas = group.nodes.filter((n) => n.port !== primary.port && n.pid !== undefined);
    try {
      const saleId = 2;
      await store.warm({ saleId, stock: 10, remaining: 10, epoch: 'e2', buyers: [], released: [] });
      // A frozen replica (too short for Sentinel to act on a replica anyway) confirms nothing.
      for (const replica of replicas) await group.kill(replica, 'SIGSTOP');
      const first = await store.reserve({ saleId, userId: 'carol', orderId: 'o-carol', now: Date.now(), perUserLimit: 0 });
      assert.equal(first.code, ReserveCode.Reserved);
      assert.equal(await store.awaitDurable(saleId, 'o-carol'), false, 'answered 503: no replica confirmed it');
      await assert.rejects(
        store.reserve({ saleId, userId: 'carol', orderId: 'o-carol-2', now: Date.now(), perUserLimit: 0 }),
        /not confirmed by a Redis replica yet/,
        'the retry is refused (503) too, not answered 2xx with an order a failover could still lose',
      );
      for (const replica of replicas) await group.kill(replica, 'SIGCONT');
      let retry: Awaited<ReturnType<typeof store.reserve>> | undefined;
      for (let i = 0; i < 50 && retry === undefined; i++) {
        retry = await store.reserve({ saleId, userId: 'carol', orderId: 'o-carol-3', now: Date.now(), perUserLimit: 0 }).catch(() => undefined);
        if (retry === undefined) await sleep(100);
      }
      assert.deepEqual(retry, { code: ReserveCode.Duplicate, orderId: 'o-carol' }, 'once the replica has it, the retry gets the same order');
    } finally {
      for (const replica of replicas) await group.kill(replica, 'SIGCONT').catch(() => undefined);
      await store.close();
    }
  });
});
