import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { DatabaseServer } from './support/database-server.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';
import { freshDatabaseUrl, sharedMariaDb, sharedPostgres } from './support/servers.js';

// The machine's own services listen on these; the harness must never hand them out.
const MACHINE_PORTS = [3306, 5432, 6379];

async function withRedis<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await client.connect();
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test harness: private Redis', () => {
  let redis: RedisServer;

  before(async () => {
    redis = await startRedis({ appendonly: true });
  });
  after(() => redis.stop());

  it('answers PING on its own loopback port', async () => {
    assert.ok(!MACHINE_PORTS.includes(redis.port), `port ${redis.port} belongs to a machine service`);
    assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
    assert.equal(await withRedis(redis.url, (client) => client.ping()), 'PONG');
  });

  it('keeps appendonly data when restarted after SIGKILL, in a new process on the same port', async () => {
    await withRedis(redis.url, (client) => client.set('stock:1', '42'));
    const killedPid = redis.pid;
    redis.kill('SIGKILL');
    await redis.restart();
    assert.notEqual(redis.pid, killedPid);
    assert.equal(isRunning(killedPid), false);
    assert.equal(await withRedis(redis.url, (client) => client.get('stock:1')), '42');
  });

  it('empties itself on flushAll', async () => {
    await withRedis(redis.url, (client) => client.set('stock:2', '7'));
    await redis.flushAll();
    assert.equal(await withRedis(redis.url, (client) => client.dbsize()), 0);
  });

  it('ends its process and removes its folder on stop', async () => {
    const other = await startRedis();
    await other.stop();
    assert.equal(isRunning(other.pid), false);
    assert.equal(existsSync(other.dir), false);
  });
});

async function mysqlTables(url: string): Promise<string[]> {
  const connection = await createConnection(url);
  try {
    const [rows] = await connection.query('SHOW TABLES');
    return (rows as Record<string, string>[]).map((row) => Object.values(row)[0] ?? '');
  } finally {
    await connection.end();
  }
}

async function withPostgres<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function postgresTables(url: string): Promise<string[]> {
  return withPostgres(url, async (client) => {
    const result = await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    return result.rows.map((row) => row.tablename);
  });
}

describe('test harness: shared MariaDB', () => {
  let server: DatabaseServer;

  before(async () => {
    server = await sharedMariaDb();
  });

  it('creates distinct empty databases that accept CREATE TABLE, INSERT and SELECT', async () => {
    const first = await server.createDatabase();
    const second = await server.createDatabase();
    assert.notEqual(first, second);
    assert.ok(first.startsWith(`mysql://root@127.0.0.1:${server.port}/`));
    assert.ok(!MACHINE_PORTS.includes(server.port));
    assert.deepEqual(await mysqlTables(first), []);

    const connection = await createConnection(first);
    try {
      await connection.query('CREATE TABLE orders (id VARCHAR(32) PRIMARY KEY, quantity INT NOT NULL)');
      await connection.query('INSERT INTO orders VALUES (?, ?), (?, ?)', ['o1', 1, 'o2', 2]);
      const [rows] = await connection.query('SELECT id, quantity FROM orders ORDER BY id');
      assert.deepEqual(rows, [
        { id: 'o1', quantity: 1 },
        { id: 'o2', quantity: 2 },
      ]);
    } finally {
      await connection.end();
    }
    assert.deepEqual(await mysqlTables(second), []);
    await server.dropDatabase(new URL(first).pathname.slice(1));
    await server.dropDatabase(new URL(second).pathname.slice(1));
  });

  it('refuses to be killed by one test, because every test shares it', () => {
    assert.throws(() => server.kill('SIGKILL'), /does not own it/);
  });
});

describe('test harness: shared PostgreSQL', () => {
  let server: DatabaseServer;

  before(async () => {
    server = await sharedPostgres();
  });

  it('creates distinct empty databases that accept CREATE TABLE, INSERT and SELECT', async () => {
    const first = await server.createDatabase();
    const second = await server.createDatabase();
    assert.notEqual(first, second);
    assert.ok(first.startsWith(`postgres://postgres@127.0.0.1:${server.port}/`));
    assert.ok(!MACHINE_PORTS.includes(server.port));
    assert.deepEqual(await postgresTables(first), []);

    await withPostgres(first, async (client) => {
      await client.query('CREATE TABLE orders (id TEXT PRIMARY KEY, quantity INT NOT NULL)');
      await client.query('INSERT INTO orders VALUES ($1, $2), ($3, $4)', ['o1', 1, 'o2', 2]);
      const result = await client.query('SELECT id, quantity FROM orders ORDER BY id');
      assert.deepEqual(result.rows, [
        { id: 'o1', quantity: 1 },
        { id: 'o2', quantity: 2 },
      ]);
    });
    assert.deepEqual(await postgresTables(second), []);
    await server.dropDatabase(new URL(first).pathname.slice(1));
    await server.dropDatabase(new URL(second).pathname.slice(1));
  });
});

describe('test harness: fresh database URLs', () => {
  it('gives each SQLite test a file in a new folder', async () => {
    const first = await freshDatabaseUrl('sqlite');
    const second = await freshDatabaseUrl('sqlite');
    assert.match(first, /^sqlite:\/.+\/seckill\.db$/);
    assert.notEqual(dirname(first), dirname(second));
    assert.ok(existsSync(dirname(first.slice('sqlite:'.length))));
  });
});
