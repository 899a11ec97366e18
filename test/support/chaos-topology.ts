import { readdirSync, readFileSync } from 'node:fs';
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

/** One `seckill start` node (api + writer; a cluster primary with `workers`) behind HAProxy, under a fixed name and port. */
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
  /** Pids of the node's cluster workers (children of its primary); empty without `workers` or when it is down. */
  workerPids(node: ApiNode): number[];
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
  /** `seckill start --workers N` on every node (a node cluster per host; needs Redis, which the topology has). */
  readonly workers?: number;
}

/** Pids whose parent is `parent`, read from /proc (Linux), as `ps --ppid` would list them. */
export function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

/**
 * Starts the API tier of issue 5 from real processes: a private Redis, a fresh database
 * on the shared MariaDB, `nodes` `seckill start` processes (api + writer roles; with
 * `workers`, each a node cluster of that many workers) and HAProxy in front; resolves once
 * HAProxy sees every node UP.
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
    const args = options.workers === undefined ? [] : ['--workers', String(options.workers)];
    const nodes: ApiNode[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      // The first node migrates alone; starting the rest in parallel would race the migration.
      const proc = await startAppProcess(env, { port, args });
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
        node.process = await startAppProcess(env, { port: node.port, args });
        started.push(node.process);
        await proxy.waitForStatus(node.name, 'UP');
      },
      workerPids(node) {
        const pid = node.process?.child.pid;
        return options.workers === undefined || pid === undefined ? [] : childPids(pid);
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
