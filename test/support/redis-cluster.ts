/**
 * A private Redis Cluster for tests: three masters (no replicas) started with
 * `--cluster-enabled yes` on free loopback ports in one temp folder, joined with
 * `redis-cli --cluster create`, as an operator would. Never the machine's own Redis and never
 * ports 6379/26379: every port (client and cluster bus) comes from {@link freePort}.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ensureBinary } from './binaries.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { runSetupCommand, ServerProcess, ServerStartError } from './server-process.js';

/** One master of the test cluster. */
export interface ClusterNode {
  /** `m1`, `m2`, `m3`. */
  readonly name: string;
  readonly port: number;
  /** Its folder: `nodes.conf`, `redis.log`. */
  readonly dir: string;
}

/** Three joined masters. */
export interface RedisClusterGroup {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: SECKILL_REDIS_URL. */
  readonly url: string;
  readonly masters: readonly ClusterNode[];
  /** The master that owns `key`'s slot now (asks `CLUSTER KEYSLOT` and `CLUSTER SLOTS`). */
  masterOf(key: string): Promise<ClusterNode>;
  /** Sends one command to one node and returns the reply (fails within `timeoutMs`). */
  call(port: number, args: readonly (string | number)[], timeoutMs?: number): Promise<unknown>;
  /** Stops every node and removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters to start; default 3 (the least `redis-cli --cluster create` accepts). */
  readonly masters?: number;
}

/** Sends one command on a short-lived plain (non-cluster) connection to one node. */
async function call(port: number, args: readonly (string | number)[], timeoutMs = 2000): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

class Node implements ClusterNode {
  process: ServerProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly busPort: number,
    readonly dir: string,
  ) {}
}

class PrivateRedisCluster implements RedisClusterGroup {
  readonly masters: Node[];
  readonly #dir: string;
  readonly #redisServer: string;
  readonly #redisCli: string;
  #stopped = false;

  constructor(dir: string, redisServer: string, redisCli: string, ports: number[], busPorts: number[]) {
    this.#dir = dir;
    this.#redisServer = redisServer;
    this.#redisCli = redisCli;
    this.masters = ports.map((port, i) => new Node(`m${i + 1}`, port, busPorts[i], join(dir, `m${i + 1}`)));
  }

  get url(): string {
    return `redis-cluster://${this.masters.map((m) => `127.0.0.1:${m.port}`).join(',')}`;
  }

  call(port: number, args: readonly (string | number)[], timeoutMs?: number): Promise<unknown> {
    return call(port, args, timeoutMs);
  }

  async masterOf(key: string): Promise<ClusterNode> {
    const port = this.masters[0].port;
    const slot = Number(await call(port, ['CLUSTER', 'KEYSLOT', key]));
    const ranges = (await call(port, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number, string]][];
    const owner = ranges.find(([first, last]) => slot >= first && slot <= last);
    const master = this.masters.find((m) => m.port === Number(owner?.[2][1]));
    if (!master) throw new Error(`no master of this cluster owns slot ${slot} (key ${key}): ${JSON.stringify(ranges)}`);
    return master;
  }

  async launch(): Promise<void> {
    await Promise.all(this.masters.map((node) => this.#startNode(node)));
    // `--cluster-yes` accepts the proposed slot layout; without replicas every node is a master.
    await runSetupCommand({
      name: 'redis-cli --cluster create',
      command: this.#redisCli,
      args: ['--cluster', 'create', ...this.masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      logFile: join(this.#dir, 'cluster-create.out'),
      env: { PATH: process.env.PATH },
      cwd: this.#dir,
      timeoutMs: 30_000,
    });
    await this.#waitUntilOk(20_000);
  }

  async #startNode(node: Node): Promise<void> {
    mkdirSync(node.dir, { recursive: true });
    node.process = await ServerProcess.start({
      name: `redis-server ${node.name} (cluster) on port ${node.port}`,
      command: this.#redisServer,
      args: [
        '--port', String(node.port),
        // The bus port is picked free too, instead of the default port + 10000 that may be taken.
        '--cluster-port', String(node.busPort),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(node.dir, 'nodes.conf'),
        // Fail over and mark down quickly; no replicas here, so only "down" matters.
        '--cluster-node-timeout', '2000',
        '--dir', node.dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--logfile', join(node.dir, 'redis.log'),
      ],
      logFile: join(node.dir, 'redis-server.out'),
      extraLogFiles: [join(node.dir, 'redis.log')],
      env: { PATH: process.env.PATH },
      cwd: node.dir,
      scratchDir: this.#dir,
    });
    await node.process.waitUntilReady(async () => (await call(node.port, ['PING'], 500)) === 'PONG', { timeoutMs: 10_000 });
  }

  /** Every node says `cluster_state:ok` and knows every other one. */
  async #waitUntilOk(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    while (Date.now() < deadline) {
      why = '';
      for (const node of this.masters) {
        const info = String(await call(node.port, ['CLUSTER', 'INFO']).catch((error: Error) => error.message));
        if (!/cluster_state:ok/.test(info)) why = `${node.name}: ${info.split('\r\n')[0]}`;
        else if (!new RegExp(`cluster_known_nodes:${this.masters.length}\\b`).test(info)) why = `${node.name} does not know every node yet`;
        if (why) break;
      }
      if (!why) return;
      await sleep(100);
    }
    throw new Error(`the test Redis Cluster did not reach cluster_state:ok within ${timeoutMs} ms (${why}); logs in ${this.#dir}`);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.masters.map((n) => n.process?.stop({ graceMs: 3000 })));
    await removeScratchDir(this.#dir);
  }
}

/**
 * Starts three cluster-enabled masters on free loopback ports, joins them into one cluster
 * (16384 slots spread evenly), and resolves once every node says `cluster_state:ok`
 * (about 1–2 s). Stop it in an `after` hook; if a test forgets, it is killed at exit.
 *
 * @example
 * const cluster = await startRedisCluster();
 * after(() => cluster.stop());
 * const store = await RedisStockStore.connect(cluster.url);
 * const owner = await cluster.masterOf('seckill:{sale:1}:state');
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterGroup> {
  const count = options.masters ?? 3;
  const redisServer = await ensureBinary('redis-server', 'redis-server');
  const redisCli = await ensureBinary('redis-cli', 'redis-tools');
  for (let attempt = 1; ; attempt++) {
    const dir = createScratchDir('redis-cluster');
    const ports: number[] = [];
    while (ports.length < 2 * count) {
      const port = await freePort();
      if (!ports.includes(port) && port !== 6379 && port !== 26379) ports.push(port);
    }
    const group = new PrivateRedisCluster(dir, redisServer, redisCli, ports.slice(0, count), ports.slice(count));
    try {
      await group.launch();
      return group;
    } catch (error) {
      await group.stop();
      // Another process took one of the ports between freePort() and the bind: try new ones.
      if (!(error instanceof ServerStartError && error.addressInUse) || attempt >= 3) throw error;
    }
  }
}
