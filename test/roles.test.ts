import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppClient, inParallel } from './support/app-client.js';
import { TEST_SECRETS } from './support/app-node.js';
import { runCli, startAppProcess } from './support/app-process.js';
import type { AppProcess } from './support/app-process.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

describe('several processes sharing Redis', () => {
  let redis: RedisServer;
  const processes: AppProcess[] = [];
  let env: Record<string, string>;
  before(async () => {
    redis = await startRedis();
    env = {
      SECKILL_DATABASE_URL: await freshDatabaseUrl('mysql'),
      SECKILL_REDIS_URL: redis.url,
      SECKILL_ADMIN_TOKEN: TEST_SECRETS.adminToken,
      SECKILL_JWT_SECRET: TEST_SECRETS.jwtSecret,
      SECKILL_RATE_LIMIT_PER_USER: '0',
      SECKILL_DATA_DIR: '/tmp',
    };
  });
  after(async () => {
    for (const p of processes) await p.kill('SIGTERM');
    await redis?.stop();
  });

  it('sells exactly the stock through a 2-worker cluster, an api-only node and a separate writer', async () => {
    const cluster = await startAppProcess(env, { args: ['--workers', '2'] });
    processes.push(cluster);
    const apiOnly = await startAppProcess({ ...env, SECKILL_ROLES: 'api' });
    processes.push(apiOnly);
    const clients = [cluster, apiOnly].map((p) => new AppClient(p.url, TEST_SECRETS.adminToken, TEST_SECRETS.jwtSecret));
    const saleId = await clients[0].createSale(150);
    const users = Array.from({ length: 1000 }, (_, i) => `roles-${i}`);
    const answers = await inParallel(users, 64, (user, i) => clients[i % 2].purchase(saleId, user));
    assert.equal(answers.filter((a) => a.status === 202).length, 150);
    assert.equal(answers.filter((a) => a.body.code === 'SOLD_OUT').length, 850);
    await clients[1].drained(saleId);
    const stats = await clients[1].stats(saleId);
    assert.deepEqual([stats.body.created, stats.body.remaining, stats.body.pending], [150, 0, 0]);
  });

  it('keeps orders queued while no writer runs, and a writer-only node records them later', async () => {
    const apiOnly = processes[1];
    const client = new AppClient(apiOnly.url, TEST_SECRETS.adminToken, TEST_SECRETS.jwtSecret);
    await processes[0].kill('SIGTERM'); // the only writer so far
    const saleId = await client.createSale(20);
    const answers = await inParallel(Array.from({ length: 20 }, (_, i) => `queued-${i}`), 10, (u) => client.purchase(saleId, u));
    assert.ok(answers.every((a) => a.status === 202));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waiting = await client.stats(saleId);
    assert.deepEqual([waiting.body.pending, waiting.body.created], [20, 0], 'nothing is written without a writer');
    const order = await client.request('GET', `/api/orders/${answers[0].body.orderId}`, { token: client.tokenFor('queued-0') });
    assert.equal(order.body.status, 'pending');
    const pay = await client.request('POST', `/api/orders/${answers[0].body.orderId}/pay`, { token: client.tokenFor('queued-0') });
    assert.deepEqual([pay.status, pay.body.code, pay.headers.get('retry-after')], [409, 'ORDER_PENDING', '1']);

    const writer = await startAppProcess({ ...env, SECKILL_ROLES: 'writer' });
    try {
      const purchase = await fetch(`${writer.url}/api/sales/${saleId}/purchase`, { method: 'POST' });
      assert.equal(purchase.status, 404, 'a writer-only node serves health and metrics, not the API');
      await client.drained(saleId);
      assert.equal((await client.stats(saleId)).body.created, 20);
      const metrics = await (await fetch(`${writer.url}/metrics`)).text();
      assert.match(metrics, /^seckill_orders_persisted_total 20$/m);
    } finally {
      await writer.kill('SIGTERM');
    }
  });

  it('prints a demo summary with nothing oversold, duplicated or lost', async () => {
    const apiOnly = processes[1];
    const writer = await startAppProcess({ ...env, SECKILL_ROLES: 'writer' });
    try {
      const run = await runCli(['demo', '--buyers', '600', '--stock', '60', '--concurrency', '32', '--url', apiOnly.url, '--json'], env);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const summary = JSON.parse(run.stdout) as { sold: number; oversold: number; duplicates: number; lost: number; rejected: Record<string, number> };
      assert.deepEqual([summary.sold, summary.oversold, summary.duplicates, summary.lost], [60, 0, 0, 0]);
      assert.equal(summary.rejected['409 SOLD_OUT'], 540);
    } finally {
      await writer.kill('SIGTERM');
    }
  });

  it('creates and lists sales from the command line, and migrates an up-to-date database without change', async () => {
    const apiOnly = processes[1];
    const created = await runCli(['sale', 'create', '--name', 'CLI launch', '--stock', '42', '--duration-minutes', '5', '--url', apiOnly.url, '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const sale = JSON.parse(created.stdout) as { id: number; stock: number; name: string };
    assert.deepEqual([sale.name, sale.stock], ['CLI launch', 42]);
    const listed = await runCli(['sale', 'list', '--url', apiOnly.url], env);
    assert.match(listed.stdout, new RegExp(`^${sale.id}\\s+0/42\\s+.*CLI launch$`, 'm'));
    const page = await fetch(`${apiOnly.url}/api/sales/${sale.id}`);
    assert.equal(((await page.json()) as { remaining: number }).remaining, 42, 'the stock was loaded');
    const migrate = await runCli(['migrate'], env);
    assert.deepEqual([migrate.code, migrate.stdout.trim()], [0, 'schema already up to date']);
    const bad = await runCli(['sale', 'create', '--name', 'x', '--stock', '0', '--url', apiOnly.url], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /VALIDATION_FAILED/);
  });
});
