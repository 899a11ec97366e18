/**
 * What the PostgreSQL pool does when its server goes away under it, as it does during a
 * Patroni failover: the process must survive, queries must fail rather than hang, and the
 * pool must work again once a server answers.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabaseBackend } from '../src/db/open-database.js';
import { postgresTimeouts } from '../src/db/dialects/postgres-pool.js';
import type { DatabaseServer } from './support/database-server.js';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { startPostgres } from './support/postgres-server.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl } from './support/servers.js';

/**
 * Freezes (SIGSTOP) or thaws (SIGCONT) a private server whole: the postmaster, which would
 * fork new connections, and every process it runs, which answer the open ones.
 */
async function freezeServer(server: DatabaseServer, signal: 'SIGSTOP' | 'SIGCONT', pids: readonly number[]): Promise<void> {
  server.kill(signal);
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
}

/** The pids of a server's processes other than the postmaster, as pg_stat_activity lists them. */
async function serverPids(rootUrl: string): Promise<number[]> {
  const admin = new pg.Client({ connectionString: rootUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number }>('select pid from pg_stat_activity where pid <> pg_backend_pid()');
    return rows.map((r) => r.pid);
  } finally {
    await admin.end();
  }
}

/** Resolves to how long `work` took to settle, failing the test when it takes longer than `limitMs`. */
async function settlesWithin(limitMs: number, work: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${limitMs} ms: the query hangs`)), limitMs);
  });
  try {
    const error = await Promise.race([work.then(() => undefined, (e: unknown) => e ?? new Error('rejected')), limit]);
    return { ms: performance.now() - started, error };
  } finally {
    clearTimeout(timer);
  }
}

describe('postgres: losing the server under the pool', () => {
  const servers: DatabaseServer[] = [];
  let redis: RedisServer | undefined;
  let app: TestNode | undefined;
  after(async () => {
    await app?.stop();
    await redis?.stop();
    for (const server of servers) await server.stop();
  });

  it('survives the server ending a connection in the middle of a transaction, and the next query works', async () => {
    const url = await freshDatabaseUrl('postgres');
    const backend = openDatabaseBackend(url, { poolSize: 2 });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const transaction = backend.db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        // The server ends this connection while the client holds it between two statements,
        // as a dying primary does; pg then emits 'error' on a client the pool is not watching.
        await admin.query('select pg_terminate_backend($1)', [rows[0].pid]);
        await sleep(300);
        await sql`select 1`.execute(trx);
      });
      await assert.rejects(transaction, 'the transaction fails: its connection is gone');
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(backend.db);
      assert.equal(rows[0].one, 1, 'a new connection serves the next query');
    } finally {
      await admin.end();
      await backend.close();
    }
  });

  it('fails queries and connects to a server that stopped answering within the time limits, and works again once it answers', async () => {
    const server = await startPostgres();
    servers.push(server);
    const url = `${await server.createDatabase()}?connect_timeout=1&query_timeout=1000`;
    assert.deepEqual(postgresTimeouts(url), { connectMs: 1000, queryMs: 1000 });
    const backend = openDatabaseBackend(url, { poolSize: 2 });
    try {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(backend.db);
      // The postmaster (no new connections) and the pooled connection's backend (no answers).
      const freeze = (signal: NodeJS.Signals): void => {
        server.kill(signal);
        process.kill(rows[0].pid, signal);
      };
      freeze('SIGSTOP');
      try {
        // One query on the pooled connection (query_timeout), one that needs a new connection
        // (connect_timeout): the kernel still accepts, the frozen server never answers.
        const [onPooled, onNew] = await Promise.all([
          settlesWithin(5000, sql`select 1`.execute(backend.db)),
          settlesWithin(5000, sql`select 2`.execute(backend.db)),
        ]);
        assert.ok(onPooled.error !== undefined && onNew.error !== undefined, `both queries fail while the server is frozen: ${String(onPooled.error)} after ${Math.round(onPooled.ms)} ms, ${String(onNew.error)} after ${Math.round(onNew.ms)} ms`);
        assert.ok(Math.max(onPooled.ms, onNew.ms) < 3000, `they failed after ${Math.round(onPooled.ms)} and ${Math.round(onNew.ms)} ms`);
      } finally {
        freeze('SIGCONT');
      }
      const again = await settlesWithin(5000, sql`select 3 as three`.execute(backend.db));
      assert.equal(again.error, undefined, `the pool serves again once the server answers: ${String(again.error)}`);
    } finally {
      await backend.close();
    }
  });

  it('an API node keeps selling and stays ready (degraded) while its PostgreSQL hangs, and persists the orders once it answers', async () => {
    const server = await startPostgres();
    servers.push(server);
    redis = await startRedis({ appendonly: true });
    const databaseUrl = `${await server.createDatabase()}?connect_timeout=1&query_timeout=1000`;
    // The writer's retries during the hang are expected: keep them out of the test output.
    app = await startTestNode({ databaseUrl, redisUrl: redis.url, rateLimitPerUser: 0, logLevel: 'error' });
    const saleId = await app.client.createSale(10);
    assert.equal((await app.client.purchase(saleId, 'before-hang')).status, 202);
    await app.client.drained(saleId);

    const pids = await serverPids(server.rootUrl);
    await freezeServer(server, 'SIGSTOP', pids);
    try {
      const ready = await settlesWithin(2000, app.client.request<{ status: string; checks: Record<string, string> }>('GET', '/health/ready'));
      const answer = await app.client.request<{ status: string; checks: Record<string, string> }>('GET', '/health/ready');
      assert.equal(ready.error, undefined);
      assert.deepEqual([answer.status, answer.body.status, answer.body.checks.database], [200, 'degraded', 'down'], 'still in the balancer: selling needs only Redis');
      for (const user of ['during-hang-1', 'during-hang-2', 'during-hang-3']) {
        const purchase = await app.client.purchase(saleId, user);
        assert.equal(purchase.status, 202, `${user} bought while the database hangs: ${JSON.stringify(purchase.body)}`);
      }
      // Long enough for the writer to be stuck in a query, if a query could hang.
      await sleep(1500);
    } finally {
      await freezeServer(server, 'SIGCONT', pids);
    }
    await app.client.drained(saleId, 15_000);
    const stats = await app.client.stats(saleId);
    assert.deepEqual([stats.body.created, stats.body.remaining], [4, 6], 'every order bought during the hang is in the database');
    const ready = await app.client.request<{ status: string }>('GET', '/health/ready');
    assert.deepEqual([ready.status, ready.body.status], [200, 'ready']);
  });
});
