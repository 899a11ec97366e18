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
import { startPostgres } from './support/postgres-server.js';
import { freshDatabaseUrl } from './support/servers.js';

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
  after(async () => {
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
});
