import { AppClient } from './app-client.js';
import { TEST_SECRETS } from './app-node.js';
import { startAppProcess } from './app-process.js';
import type { AppProcess } from './app-process.js';
import { startHaproxy } from './chaos-haproxy.js';
import type { Haproxy } from './chaos-haproxy.js';
import { freePort } from './free-port.js';
import { startRedis } from './redis-server.js';
import type { RedisServer } from './redis-server.js';
import { freshDatabaseUrl } from './servers.js';

/** One `seckill start` node (api + writer) behind HAProxy, under a fixed name and port. */
export interface ApiNode {
  readonly name: string;
  readonly port: number;
  /** The running process; undefined after kill() until restart(). */
  process: AppProcess | undefined;
}

/** HAProxy, N API+writer nodes, a private Redis and a fresh MariaDB database, all on loopback. */
export interface ApiTopology {
  readonly haproxy: Haproxy;
  /** The private Redis, when the topology started its own (no `redisUrl` option). */
  readonly redis: RedisServer | undefined;
  readonly databaseUrl: string;
  readonly nodes: readonly ApiNode[];
  /** A client that goes through HAProxy, as buyers do. */
  readonly client: AppClient;
  /** Sends a signal and waits for the process to exit. */
  kill(node: ApiNode, signal: NodeJS.Signals): Promise<void>;
  /** Starts the node again on its port and waits until HAProxy's checks see it UP. */
  restart(node: ApiNode): Promise<void>;
  stop(): Promise<void>;
}

/** Options for {@link startApiTopology}. */
export interface ApiTopologyOptions {
  readonly nodes?: number;
  /** SECKILL_DRAIN_MS of every node. */
  readonly drainMs?: number;
  /** Extra SECKILL_* settings for every node. */
  readonly env?: Record<string, string>;
  /** SECKILL_REDIS_URL of the nodes (e.g. a Sentinel group); default: a private Redis started here. */
  readonly redisUrl?: string;
  /** SECKILL_DATABASE_URL of the nodes (e.g. an HAProxy writer port); default: a fresh database on the private MariaDB. */
  readonly databaseUrl?: string;
}

/**
 * Starts the API tier of issue 5 from real processes: a private Redis, a fresh database
 * on the shared MariaDB, `nodes` `seckill start` processes (api + writer roles) and
 * HAProxy in front; resolves once HAProxy sees every node UP.
 */
export async function startApiTopology(options: ApiTopologyOptions = {}): Promise<ApiTopology> {
  const count = options.nodes ?? 2;
  const redis = options.redisUrl === undefined ? await startRedis({ appendonly: true }) : undefined;
  const started: AppProcess[] = [];
  let haproxy: Haproxy | undefined;
  try {
    const databaseUrl = options.databaseUrl ?? (await freshDatabaseUrl('mysql'));
    const env: Record<string, string> = {
      SECKILL_DATABASE_URL: databaseUrl,
      SECKILL_REDIS_URL: options.redisUrl ?? redis!.url,
      SECKILL_ADMIN_TOKEN: TEST_SECRETS.adminToken,
      SECKILL_JWT_SECRET: TEST_SECRETS.jwtSecret,
      SECKILL_RATE_LIMIT_PER_USER: '0',
      SECKILL_DATA_DIR: '/tmp',
      SECKILL_DRAIN_MS: String(options.drainMs ?? 1000),
      // A killed node's unacknowledged batch is taken over by the survivor after this.
      SECKILL_WRITER_CLAIM_IDLE_MS: '1000',
      ...options.env,
    };
    const nodes: ApiNode[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      // The first node migrates alone; starting the rest in parallel would race the migration.
      const proc = await startAppProcess(env, { port });
      started.push(proc);
      nodes.push({ name: String.fromCharCode(97 + i), port, process: proc });
    }
    haproxy = await startHaproxy(nodes.map((n) => ({ name: n.name, port: n.port })));
    for (const node of nodes) await haproxy.waitForStatus(node.name, 'UP');
    const proxy = haproxy;
    return {
      haproxy: proxy,
      redis,
      databaseUrl,
      nodes,
      client: new AppClient(proxy.url, TEST_SECRETS.adminToken, TEST_SECRETS.jwtSecret),
      async kill(node, signal) {
        await node.process?.kill(signal);
        node.process = undefined;
      },
      async restart(node) {
        if (node.process) throw new Error(`node ${node.name} still runs`);
        node.process = await startAppProcess(env, { port: node.port });
        started.push(node.process);
        await proxy.waitForStatus(node.name, 'UP');
      },
      async stop() {
        await proxy.stop();
        await Promise.all(started.map((p) => p.kill('SIGKILL')));
        await redis?.stop();
      },
    };
  } catch (error) {
    await haproxy?.stop();
    await Promise.all(started.map((p) => p.kill('SIGKILL')));
    await redis?.stop();
    throw error;
  }
}
